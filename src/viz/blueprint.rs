//! The viewer's layout, sent with every recording: a 3D view of the world on the left; on the
//! right the projected images in panels shaped like them, stacked, above the time series.
//!
//! rerun's own blueprint builder cannot set a view's camera, so the layout is written here
//! from the blueprint archetypes: containers and views as entities of a blueprint store.

use crate::error::Result;
use rerun::blueprint::components::{
    ColumnShare, ContainerKind, IncludedContent, PanelState, PlayState, RootContainer, RowShare,
};
use rerun::external::re_log_types::BlueprintActivationCommand;
use rerun::external::re_sdk_types::blueprint::archetypes::{
    ContainerBlueprint, EyeControls3D, PanelBlueprint, TimePanelBlueprint, ViewBlueprint, ViewContents,
    ViewportBlueprint,
};
use rerun::{RecordingStream, RecordingStreamBuilder};

/// A 2-D image the layout gives a panel: its entity path and its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageView {
    /// Entity path of the image (`images/range`, `perception/liif/rendered`...).
    pub path: String,
    /// Rows of the image.
    pub rows: usize,
    /// Columns of the image.
    pub cols: usize,
}

impl ImageView {
    /// An image at `path` of `rows x cols` pixels.
    pub fn new(path: impl Into<String>, rows: usize, cols: usize) -> Self {
        Self {
            path: path.into(),
            rows,
            cols,
        }
    }
}

/// Where the 3D view's camera looks from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Eye {
    /// rerun's default: framed on whatever the scene holds when the view opens.
    Auto,
    /// An orbit camera at `position`, looking at `target` (world frame, Z up).
    At { position: [f32; 3], target: [f32; 3] },
    /// Following the sensor (`world/sensor`) as it moves, for a stream whose extent is unknown.
    FollowSensor,
}

impl Eye {
    /// An oblique view from the south, high enough to see the whole of `points` (the
    /// trajectories): the view a user opens a finished run for.
    pub fn framing(points: impl IntoIterator<Item = [f32; 3]>) -> Self {
        let (mut lo, mut hi) = ([f32::MAX; 3], [f32::MIN; 3]);
        for p in points {
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        if lo[0] > hi[0] {
            return Eye::Auto;
        }
        let target = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0, (lo[2] + hi[2]) / 2.0];
        // Half the larger side, with room for the map beyond the path (at least a street's
        // width), seen from 35 degrees off vertical.
        let reach = ((hi[0] - lo[0]).max(hi[1] - lo[1]) / 2.0 + 25.0).max(40.0);
        let distance = reach / (VIEW_HALF_ANGLE_DEG.to_radians()).tan();
        let tilt = OBLIQUE_TILT_DEG.to_radians();
        let position = [
            target[0],
            target[1] - distance * tilt.sin(),
            target[2] + distance * tilt.cos(),
        ];
        Eye::At { position, target }
    }
}

/// Half the 3D view's vertical field of view, degrees (rerun's default camera).
const VIEW_HALF_ANGLE_DEG: f32 = 30.0;
/// How far the framing camera leans from looking straight down, degrees.
const OBLIQUE_TILT_DEG: f32 = 35.0;
/// A 16:9 window: the image panels' heights are set from the column width with this aspect.
const WINDOW_ASPECT: f32 = 16.0 / 9.0;
/// Share of the window's width given to the 3D view.
const WORLD_WIDTH_SHARE: f32 = 0.5;
/// Height of a panel's title bar as a share of the window's height.
const TITLE_BAR_SHARE: f32 = 0.025;

/// What the layout shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Images, top to bottom.
    pub images: Vec<ImageView>,
    /// The 3D view's camera.
    pub eye: Eye,
    /// Show the live link's counters and latency (a sensor stream).
    pub live: bool,
}

/// Hands out container and view ids, unique within one blueprint.
struct Ids(u64);

impl Ids {
    fn next(&mut self) -> ([u8; 16], String) {
        self.0 += 1;
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&0x6f76_6c61_702d_736c_u64.to_be_bytes());
        bytes[8..].copy_from_slice(&self.0.to_be_bytes());
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let text = format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        );
        (bytes, text)
    }
}

/// One blueprint being written.
struct Writer {
    rec: RecordingStream,
    ids: Ids,
}

fn err(e: impl std::fmt::Display) -> crate::error::Error {
    crate::error::Error::Viz(e.to_string())
}

impl Writer {
    /// A view of `class` (`3D`, `2D`, `TimeSeries`) named `name` showing `contents`; returns
    /// its blueprint path.
    fn view(&mut self, class: &str, name: &str, origin: &str, contents: &[&str]) -> Result<(String, String)> {
        let (_, id) = self.ids.next();
        let path = format!("view/{id}");
        self.rec
            .log(
                format!("{path}/ViewContents"),
                &ViewContents::new(contents.iter().map(|q| q.to_string())),
            )
            .map_err(err)?;
        let view = ViewBlueprint::new(class)
            .with_display_name(name)
            .with_space_origin(origin);
        self.rec.log(path.clone(), &view).map_err(err)?;
        Ok((path, id))
    }

    /// A container of `kind` holding `children` (blueprint paths) with these shares.
    fn container(
        &mut self,
        kind: ContainerKind,
        name: &str,
        children: &[String],
        shares: &[f32],
    ) -> Result<([u8; 16], String)> {
        let (bytes, id) = self.ids.next();
        let path = format!("container/{id}");
        let mut c = ContainerBlueprint::new(kind)
            .with_display_name(name)
            .with_contents(children.iter().map(|c| IncludedContent(c.as_str().into())));
        if !shares.is_empty() {
            c = match kind {
                ContainerKind::Horizontal => c.with_col_shares(shares.iter().map(|&s| ColumnShare(s.into()))),
                _ => c.with_row_shares(shares.iter().map(|&s| RowShare(s.into()))),
            };
        }
        self.rec.log(path.clone(), &c).map_err(err)?;
        Ok((bytes, path))
    }

    fn world(&mut self, eye: Eye) -> Result<String> {
        let (path, _) = self.view("3D", "world", "/world", &["$origin/**"])?;
        let controls = match eye {
            Eye::Auto => return Ok(path),
            Eye::At { position, target } => EyeControls3D::new()
                .with_position(position)
                .with_look_target(target)
                .with_eye_up([0.0f32, 0.0, 1.0]),
            Eye::FollowSensor => EyeControls3D::new()
                .with_position([-30.0f32, 0.0, 25.0])
                .with_look_target([0.0f32, 0.0, 0.0])
                .with_eye_up([0.0f32, 0.0, 1.0])
                .with_tracking_entity("/world/sensor"),
        };
        self.rec.log(format!("{path}/EyeControls3D"), &controls).map_err(err)?;
        Ok(path)
    }

    /// The time series, one plot per unit: milliseconds (stage timings, live latency), loop
    /// scores (0 to 1), frames waiting, and for a live sensor its packet counters; perception
    /// stages' figures last. Stacked, or as tabs when the perception stages' images leave them
    /// too little height to read.
    fn series(&mut self, live: bool, perception: bool) -> Result<String> {
        let mut views = vec![
            self.view(
                "TimeSeries",
                "stage timings and latency [ms]",
                "/metrics",
                &["/metrics/stage_ms/**", "/metrics/live/latency_ms"],
            )?
            .0,
            self.view(
                "TimeSeries",
                "loop scores",
                "/",
                &["/loops/**", "/metrics/loop_overlap"],
            )?
            .0,
            self.view("TimeSeries", "loop queue [frames]", "/metrics/queue", &["$origin/**"])?
                .0,
        ];
        if live {
            let contents = ["$origin/**", "-/metrics/live/latency_ms"];
            views.push(
                self.view("TimeSeries", "live link [packets]", "/metrics/live", &contents)?
                    .0,
            );
        }
        if perception {
            let contents = [
                "/metrics/**",
                "-/metrics/stage_ms/**",
                "-/metrics/queue/**",
                "-/metrics/live/**",
                "-/metrics/loop_overlap",
            ];
            views.push(self.view("TimeSeries", "perception", "/", &contents)?.0);
        }
        let kind = if perception {
            ContainerKind::Tabs
        } else {
            ContainerKind::Vertical
        };
        Ok(self.container(kind, "time series", &views, &[])?.1)
    }
}

impl Writer {
    /// The views get the window: the blueprint tree and the selection panel start folded away;
    /// the time panel follows the newest frame, so a finished run opens on its end (the whole
    /// map) and a live one keeps up.
    fn panels(&self) -> Result<()> {
        let folded = PanelBlueprint::new().with_state(PanelState::Collapsed);
        self.rec.log("blueprint_panel", &folded).map_err(err)?;
        self.rec.log("selection_panel", &folded).map_err(err)?;
        let time = TimePanelBlueprint::new()
            .with_state(PanelState::Collapsed)
            .with_timeline("frame")
            .with_play_state(PlayState::Following);
        self.rec.log("time_panel", &time).map_err(err)
    }
}

/// Sends `layout` to `rec` as its active blueprint.
pub fn send(rec: &RecordingStream, app_id: &'static str, layout: &Layout) -> Result<()> {
    let (bp, storage) = RecordingStreamBuilder::new(app_id)
        .recording_id(format!("{app_id}-blueprint-{}-{}", std::process::id(), unique()))
        .blueprint()
        .memory()
        .map_err(err)?;
    bp.set_time_sequence("blueprint", 0);
    let mut w = Writer { rec: bp, ids: Ids(0) };
    let world = w.world(layout.eye)?;
    let mut right = Vec::new();
    let mut shares = Vec::new();
    for image in &layout.images {
        right.push(
            w.view("2D", &image.path, &format!("/{}", image.path), &["$origin/**"])?
                .0,
        );
        let width = WORLD_WIDTH_SHARE * WINDOW_ASPECT;
        shares.push(width * image.rows as f32 / image.cols.max(1) as f32 + TITLE_BAR_SHARE);
    }
    let perception = layout.images.iter().any(|i| i.path.starts_with("perception/"));
    right.push(w.series(layout.live, perception)?);
    shares.push((1.0 - shares.iter().sum::<f32>()).max(0.25));
    let (_, column) = w.container(ContainerKind::Vertical, "images and series", &right, &shares)?;
    let split = [WORLD_WIDTH_SHARE, 1.0 - WORLD_WIDTH_SHARE];
    let (root, _) = w.container(ContainerKind::Horizontal, "overlap-slam", &[world, column], &split)?;
    let viewport = ViewportBlueprint::new()
        .with_root_container(RootContainer(rerun::datatypes::Uuid { bytes: root }))
        .with_auto_layout(false)
        .with_auto_views(false);
    w.rec.log("viewport", &viewport).map_err(err)?;
    w.panels()?;
    let msgs = storage.take();
    let Some(blueprint_id) = msgs.first().map(|m| m.store_id().clone()) else {
        return Err(err("the blueprint came out empty"));
    };
    let activate = BlueprintActivationCommand {
        blueprint_id,
        make_active: true,
        make_default: true,
    };
    rec.send_blueprint(msgs, activate);
    Ok(())
}

/// A number no other blueprint of this process has had.
fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_framing_camera_looks_down_on_the_middle_of_the_run_from_the_south() {
        let Eye::At { position, target } = Eye::framing([[0.0, 0.0, 0.0], [200.0, 100.0, 4.0]]) else {
            panic!("a run with an extent is framed");
        };
        assert_eq!(target, [100.0, 50.0, 2.0]);
        assert_eq!(position[0], target[0]);
        // 100 m to either side plus 25 m of margin fill the 30-degree half angle.
        let distance = ((position[1] - target[1]).powi(2) + (position[2] - target[2]).powi(2)).sqrt();
        assert!((distance - 125.0 / 30f32.to_radians().tan()).abs() < 1e-2, "{distance}");
        let tilt = ((target[1] - position[1]) / (position[2] - target[2]))
            .atan()
            .to_degrees();
        assert!((tilt - 35.0).abs() < 1e-3, "{tilt}");
    }

    #[test]
    fn a_short_or_empty_run_is_framed_sensibly() {
        assert_eq!(Eye::framing([]), Eye::Auto);
        let Eye::At { position, target } = Eye::framing([[5.0, 5.0, 0.0]]) else {
            panic!()
        };
        // One pose: the view still spans 40 m to either side.
        let height = position[2] - target[2];
        assert!((height - 40.0 / 30f32.to_radians().tan() * 35f32.to_radians().cos()).abs() < 1e-2);
    }

    #[test]
    fn ids_are_distinct_well_formed_uuids() {
        let mut ids = Ids(0);
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a.1, b.1);
        for (bytes, text) in [a, b] {
            assert_eq!(text.len(), 36);
            assert_eq!(text.matches('-').count(), 4);
            assert_eq!(bytes[6] >> 4, 4, "version 4");
            assert_eq!(bytes[8] >> 6, 2, "RFC 4122 variant");
        }
    }
}
