//! Live ROS 2 without a ROS installation: DDS (RTPS) through the pure-Rust `rustdds`, speaking
//! ROS 2's conventions — topic `/points` is DDS topic `rt/points`, type
//! `sensor_msgs/msg/PointCloud2` is `sensor_msgs::msg::dds_::PointCloud2_`, the domain is
//! `ROS_DOMAIN_ID` (0 when unset). Messages travel as raw CDR and are decoded by our own
//! [`messages`](super::messages) code, as bags are.

use super::messages::types;
use crate::error::{Error, Result};
use rustdds::policy::{Durability, History, Reliability, ResourceLimits};
use rustdds::{DomainParticipant, QosPolicies, QosPolicyBuilder, RepresentationIdentifier, TopicKind, no_key};

/// One message's CDR bytes, with the 4-byte encapsulation header our decoders expect.
#[derive(Debug, Clone)]
pub struct RawCdr(pub Vec<u8>);

/// Carries [`RawCdr`] through rustdds untouched, in either byte order.
#[derive(Debug, Clone, Copy)]
pub struct RawAdapter;

/// A payload rustdds handed over in a representation we do not read.
#[derive(Debug, thiserror::Error)]
#[error("payload representation is not plain CDR")]
pub struct NotCdr;

impl no_key::DeserializerAdapter<RawCdr> for RawAdapter {
    type Error = NotCdr;
    type Decoded = RawCdr;

    fn supported_encodings() -> &'static [RepresentationIdentifier] {
        &[RepresentationIdentifier::CDR_LE, RepresentationIdentifier::CDR_BE]
    }

    fn transform_decoded(decoded: RawCdr) -> RawCdr {
        decoded
    }
}

impl no_key::DefaultDecoder<RawCdr> for RawAdapter {
    type Decoder = RawAdapter;
    const DECODER: RawAdapter = RawAdapter;
}

impl<'de> no_key::Decode<'de, RawCdr> for RawAdapter {
    type Error = NotCdr;

    fn decode_bytes(self, input: &'de [u8], encoding: RepresentationIdentifier) -> std::result::Result<RawCdr, NotCdr> {
        let header = if encoding == RepresentationIdentifier::CDR_LE {
            [0, 1, 0, 0]
        } else if encoding == RepresentationIdentifier::CDR_BE {
            [0, 0, 0, 0]
        } else {
            return Err(NotCdr);
        };
        let mut bytes = Vec::with_capacity(input.len() + 4);
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(input);
        Ok(RawCdr(bytes))
    }
}

impl no_key::SerializerAdapter<RawCdr> for RawAdapter {
    type Error = NotCdr;

    fn output_encoding() -> RepresentationIdentifier {
        RepresentationIdentifier::CDR_LE
    }

    fn to_bytes(value: &RawCdr) -> std::result::Result<rustdds::bytes::Bytes, NotCdr> {
        // Our writer always produces CDR_LE; the header is rustdds's to write.
        match value.0.get(..2) {
            Some([0, 1]) => Ok(rustdds::bytes::Bytes::copy_from_slice(&value.0[4..])),
            _ => Err(NotCdr),
        }
    }
}

/// The DDS topic name of a ROS 2 topic (`/points` → `rt/points`).
pub fn dds_topic(ros_topic: &str) -> String {
    format!("rt/{}", ros_topic.trim_start_matches('/'))
}

/// The DDS type name of a ROS 2 type (`sensor_msgs/msg/PointCloud2` →
/// `sensor_msgs::msg::dds_::PointCloud2_`).
pub fn dds_type(ros_type: &str) -> String {
    let ros_type = types::normalise(ros_type);
    match ros_type.rsplit_once('/') {
        Some((ns, name)) => format!("{}::dds_::{name}_", ns.replace('/', "::")),
        None => ros_type,
    }
}

/// Keep-last `depth` with the cache held to that depth: without the resource limit rustdds keeps
/// up to 64 samples a topic, 30 MB of a VLP-16's clouds and more of a growing path.
fn keep_last(reliability: Reliability, depth: i32) -> QosPolicies {
    QosPolicyBuilder::new()
        .reliability(reliability)
        .history(History::KeepLast { depth })
        .resource_limits(ResourceLimits {
            max_samples: depth,
            max_instances: 1,
            max_samples_per_instance: depth,
        })
        .durability(Durability::Volatile)
        .build()
}

fn reliable() -> Reliability {
    Reliability::Reliable {
        max_blocking_time: rustdds::Duration::from_millis(100),
    }
}

/// Clouds a subscription holds while the pipeline is busy: a second at 10 Hz (ROS 2's sensor-data
/// profile keeps 5; a deeper reader still matches any publisher, and rides out a longer stall).
const SENSOR_DEPTH: i32 = 10;

/// ROS 2's sensor-data QoS (`rmw_qos_profile_sensor_data`): best effort, keep the last
/// [`SENSOR_DEPTH`].
pub fn sensor_qos() -> QosPolicies {
    keep_last(Reliability::BestEffort, SENSOR_DEPTH)
}

/// ROS 2's default QoS for `/tf` and state topics: reliable, keep the last 10 (rclcpp's default
/// depth for publishers).
pub fn reliable_qos() -> QosPolicies {
    keep_last(reliable(), 10)
}

/// Reliable, keep only the newest: for state that each message restates in full (a path).
pub fn latest_qos() -> QosPolicies {
    keep_last(reliable(), 1)
}

/// `/tf_static`'s: reliable, every sample kept for subscribers that join later (transient
/// local), as tf2's static broadcaster publishes.
pub fn static_qos() -> QosPolicies {
    let mut qos = keep_last(reliable(), 100);
    qos = qos.modify_by(&QosPolicyBuilder::new().durability(Durability::TransientLocal).build());
    qos
}

/// The ROS 2 domain: `ROS_DOMAIN_ID`, or 0.
pub fn domain_id() -> Result<u16> {
    match std::env::var("ROS_DOMAIN_ID") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|d| *d <= 232)
            .ok_or_else(|| Error::Usage(format!("ROS_DOMAIN_ID '{v}': want a number from 0 to 232"))),
        _ => Ok(0),
    }
}

fn dds_error(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Usage(format!("ROS 2 / DDS: {what}: {e:?}"))
}

/// A DDS participant on the ROS 2 domain.
#[derive(Clone)]
pub struct Ros2Node {
    participant: DomainParticipant,
}

/// Reads one topic's messages as raw CDR.
pub type RawReader = no_key::DataReader<RawCdr, RawAdapter>;
/// Writes one topic's messages as raw CDR.
pub type RawWriter = no_key::DataWriter<RawCdr, RawAdapter>;

impl Ros2Node {
    /// Joins the ROS 2 domain (`ROS_DOMAIN_ID`).
    pub fn new() -> Result<Self> {
        let participant = DomainParticipant::new(domain_id()?).map_err(|e| dds_error("cannot join the domain", e))?;
        Ok(Self { participant })
    }

    fn topic(&self, ros_topic: &str, ros_type: &str, qos: &QosPolicies) -> Result<rustdds::Topic> {
        self.participant
            .create_topic(dds_topic(ros_topic), dds_type(ros_type), qos, TopicKind::NoKey)
            .map_err(|e| dds_error(&format!("topic {ros_topic}"), e))
    }

    /// Subscribes to `ros_topic` of `ros_type` with `qos`.
    pub fn reader(&self, ros_topic: &str, ros_type: &str, qos: &QosPolicies) -> Result<RawReader> {
        let topic = self.topic(ros_topic, ros_type, qos)?;
        let subscriber = self
            .participant
            .create_subscriber(qos)
            .map_err(|e| dds_error("subscriber", e))?;
        subscriber
            .create_datareader_no_key::<RawCdr, RawAdapter>(&topic, Some(qos.clone()))
            .map_err(|e| dds_error(&format!("reader for {ros_topic}"), e))
    }

    /// Advertises `ros_topic` of `ros_type` with `qos`.
    pub fn writer(&self, ros_topic: &str, ros_type: &str, qos: &QosPolicies) -> Result<RawWriter> {
        let topic = self.topic(ros_topic, ros_type, qos)?;
        let publisher = self
            .participant
            .create_publisher(qos)
            .map_err(|e| dds_error("publisher", e))?;
        publisher
            .create_datawriter_no_key::<RawCdr, RawAdapter>(&topic, Some(qos.clone()))
            .map_err(|e| dds_error(&format!("writer for {ros_topic}"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ros_names_map_to_dds_names() {
        assert_eq!(dds_topic("/ouster/points"), "rt/ouster/points");
        assert_eq!(dds_type(types::POINT_CLOUD2), "sensor_msgs::msg::dds_::PointCloud2_");
        assert_eq!(dds_type("nav_msgs/Odometry"), "nav_msgs::msg::dds_::Odometry_");
        assert_eq!(dds_type(types::TF_MESSAGE), "tf2_msgs::msg::dds_::TFMessage_");
    }
}

/// Counters of a ROS 2 subscription, shared with the status line.
#[derive(Debug, Default)]
pub struct Ros2Stats {
    received: std::sync::atomic::AtomicUsize,
    malformed: std::sync::atomic::AtomicUsize,
    gaps: std::sync::atomic::AtomicUsize,
}

/// A snapshot of [`Ros2Stats`].
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Ros2Counts {
    /// Clouds received.
    pub received: usize,
    /// Clouds that did not decode (skipped, each logged).
    pub malformed: usize,
    /// Sweeps missing between received ones, judged by their stamps.
    pub lost: usize,
}

impl Ros2Stats {
    /// The counters now.
    pub fn snapshot(&self) -> Ros2Counts {
        use std::sync::atomic::Ordering::Relaxed;
        Ros2Counts {
            received: self.received.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            lost: self.gaps.load(Relaxed),
        }
    }
}

/// A live PointCloud2 topic to subscribe to.
#[derive(Debug, Clone)]
pub struct Ros2Input {
    /// The ROS 2 topic (`/points`).
    pub topic: String,
    /// End after this long without a cloud (never when `None`).
    pub idle_timeout_s: Option<f64>,
    /// Counters shared with the status line.
    pub stats: std::sync::Arc<Ros2Stats>,
    /// Set to end the stream (Ctrl-C).
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// A subscription made before the run (to see the first cloud's frame), with the clouds it
    /// took: the run's source starts with them, so that none is lost.
    pub early: std::sync::Arc<std::sync::Mutex<Option<Subscription>>>,
}

/// A cloud subscription, with clouds taken from it but not yet handed on.
pub struct Subscription {
    node: Ros2Node,
    reader: RawReader,
    held: std::collections::VecDeque<Vec<u8>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("held", &self.held.len()).finish()
    }
}

impl Ros2Input {
    /// The first cloud (CDR bytes), waiting for it up to `wait`; `None` when none came. It stays
    /// for the run's source, as do the clouds after it.
    pub fn first_cloud(&self, wait: std::time::Duration) -> Result<Option<Vec<u8>>> {
        let mut early = self.early.lock().expect("subscription lock");
        if early.is_none() {
            let node = Ros2Node::new()?;
            let reader = node.reader(&self.topic, types::POINT_CLOUD2, &sensor_qos())?;
            *early = Some(Subscription {
                node,
                reader,
                held: Default::default(),
            });
            self.hold_until_opened();
        }
        let sub = early.as_mut().expect("just made");
        let start = std::time::Instant::now();
        while sub.held.is_empty() && start.elapsed() < wait {
            match sub.reader.take_next_sample() {
                Ok(Some(s)) => sub.held.push_back(s.into_value().0),
                Ok(None) => std::thread::sleep(POLL * 10),
                Err(e) => return Err(dds_error(&format!("reading {}", self.topic), e)),
            }
        }
        Ok(sub.held.front().cloned())
    }

    /// The frame id of the first cloud (see [`Self::first_cloud`]).
    pub fn first_frame_id(&self, wait: std::time::Duration) -> Result<Option<String>> {
        Ok(self.first_cloud(wait)?.and_then(|bytes| {
            super::messages::PointCloud2::decode(&bytes, super::wire::Encoding::Cdr)
                .ok()
                .map(|c| c.header.frame_id)
        }))
    }

    /// The first cloud as a scan (see [`Self::first_cloud`]); `None` when none came or it does
    /// not decode (the run's source then reports why).
    pub fn first_scan(&self, wait: std::time::Duration) -> Result<Option<crate::scan::Scan>> {
        Ok(self.first_cloud(wait)?.and_then(|bytes| {
            let cloud = super::messages::PointCloud2::decode(&bytes, super::wire::Encoding::Cdr).ok()?;
            super::cloud::decode_cloud(&cloud).ok()
        }))
    }

    /// Keeps taking clouds into the early subscription until the run's source takes it over:
    /// the subscription keeps only its last few, and the run takes a while to start.
    fn hold_until_opened(&self) {
        let early = self.early.clone();
        std::thread::spawn(move || {
            loop {
                {
                    let mut guard = early.lock().expect("subscription lock");
                    let Some(sub) = guard.as_mut() else { return };
                    while let Ok(Some(s)) = sub.reader.take_next_sample() {
                        sub.held.push_back(s.into_value().0);
                    }
                }
                std::thread::sleep(POLL * 10);
            }
        });
    }
}

/// How often an idle subscription looks for a new sample.
const POLL: std::time::Duration = std::time::Duration::from_millis(1);

/// Clouds from a live ROS 2 topic as scans, numbered in arrival order.
pub struct Ros2Source {
    input: Ros2Input,
    reader: RawReader,
    _node: Ros2Node,
    /// Clouds taken before the run, handed on first.
    held: std::collections::VecDeque<Vec<u8>>,
    next_index: usize,
    max_scans: Option<usize>,
    last_stamp_ns: Option<i64>,
    min_period_ns: Option<i64>,
}

impl Ros2Input {
    /// Subscribes (sensor-data QoS); `frames` may cap the number of clouds (`..N`).
    pub fn open(&self, frames: crate::io::FrameRange) -> Result<Ros2Source> {
        if frames.start != 0 {
            return Err(Error::Usage(
                "a live topic starts at its first cloud: use --frames ..N".into(),
            ));
        }
        let early = self.early.lock().expect("subscription lock").take();
        let Subscription { node, reader, held } = match early {
            Some(s) => s,
            None => {
                let node = Ros2Node::new()?;
                let reader = node.reader(&self.topic, types::POINT_CLOUD2, &sensor_qos())?;
                Subscription {
                    node,
                    reader,
                    held: Default::default(),
                }
            }
        };
        Ok(Ros2Source {
            input: self.clone(),
            reader,
            _node: node,
            held,
            next_index: 0,
            max_scans: frames.end,
            last_stamp_ns: None,
            min_period_ns: None,
        })
    }
}

impl Ros2Source {
    /// Counts the sweeps a jump in stamps says were missed: the shortest interval seen is the
    /// sensor's period.
    fn count_gap(&mut self, stamp_ns: i64) {
        if let Some(last) = self.last_stamp_ns.filter(|l| stamp_ns > *l) {
            let dt = stamp_ns - last;
            let period = self.min_period_ns.map_or(dt, |p| p.min(dt));
            self.min_period_ns = Some(period);
            let missed = ((dt as f64 / period as f64).round() as usize).saturating_sub(1);
            self.input
                .stats
                .gaps
                .fetch_add(missed, std::sync::atomic::Ordering::Relaxed);
        }
        self.last_stamp_ns = Some(stamp_ns);
    }

    fn stopped(&self) -> bool {
        self.input
            .stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl Iterator for Ros2Source {
    type Item = Result<crate::scan::Scan>;

    fn next(&mut self) -> Option<Self::Item> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.max_scans.is_some_and(|m| self.next_index >= m) {
            return None;
        }
        let mut idle = std::time::Instant::now();
        loop {
            if self.stopped() {
                return None;
            }
            let sample = match self.held.pop_front() {
                Some(bytes) => Some(bytes),
                None => match self.reader.take_next_sample() {
                    Ok(s) => s.map(|s| s.into_value().0),
                    Err(e) => return Some(Err(dds_error(&format!("reading {}", self.input.topic), e))),
                },
            };
            let Some(bytes) = sample else {
                if self
                    .input
                    .idle_timeout_s
                    .is_some_and(|t| idle.elapsed().as_secs_f64() > t)
                {
                    return None;
                }
                std::thread::sleep(POLL);
                continue;
            };
            let received = std::time::Instant::now();
            self.input.stats.received.fetch_add(1, Relaxed);
            let topic = self.input.topic.clone();
            let path = std::path::Path::new(&topic);
            match super::scan_from_message(path, &topic, self.next_index, super::wire::Encoding::Cdr, &bytes, None) {
                Ok(mut scan) => {
                    self.count_gap((scan.timestamp * 1e9).round() as i64);
                    scan.received = Some(received);
                    self.next_index += 1;
                    return Some(Ok(scan));
                }
                // A robot's stream goes on past one bad message: count it, say why, wait for the next.
                Err(e) => {
                    self.input.stats.malformed.fetch_add(1, Relaxed);
                    log::warn!("{e}");
                    idle = std::time::Instant::now();
                }
            }
        }
    }
}

impl crate::io::ScanSource for Ros2Source {
    fn name(&self) -> String {
        format!("ROS 2 topic {}", self.input.topic)
    }

    fn len_hint(&self) -> Option<usize> {
        None
    }

    fn has_ground_truth(&self) -> bool {
        false
    }
}
