//! Writing ROS 2 messages into an MCAP file that `ros2 bag play` and overlap-slam read back
//! (`ros2msg` schemas, `cdr` encoding, one channel per topic), written atomically.

use crate::error::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// An MCAP file being written to a temporary path; [`McapRecorder::finish`] renames it into place.
pub struct McapRecorder {
    path: PathBuf,
    tmp: PathBuf,
    writer: mcap::Writer<std::io::BufWriter<std::fs::File>>,
    channels: HashMap<String, u16>,
    sequence: u32,
}

impl McapRecorder {
    /// Starts a recording at `path` (written to `path.tmp` until finished).
    pub fn create(path: &Path) -> Result<Self> {
        let tmp = path.with_extension("mcap.tmp");
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let writer = mcap::WriteOptions::new()
            .profile("ros2")
            .create(std::io::BufWriter::new(file))
            .map_err(|e| Error::input(&tmp, format!("MCAP: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            writer,
            channels: HashMap::new(),
            sequence: 0,
        })
    }

    fn bad(&self, e: mcap::McapError) -> Error {
        Error::input(&self.tmp, format!("MCAP: {e}"))
    }

    /// Appends one CDR message of `msg_type` on `topic`, received at `stamp_ns`.
    pub fn write(&mut self, topic: &str, msg_type: &str, stamp_ns: i64, cdr: &[u8]) -> Result<()> {
        let channel = match self.channels.get(topic) {
            Some(c) => *c,
            None => {
                // The schema text is left empty: readers that need it (Foxglove) take the type name.
                let schema = self
                    .writer
                    .add_schema(msg_type, "ros2msg", &[])
                    .map_err(|e| self.bad(e))?;
                let c = self
                    .writer
                    .add_channel(schema, topic, "cdr", &BTreeMap::new())
                    .map_err(|e| self.bad(e))?;
                self.channels.insert(topic.to_string(), c);
                c
            }
        };
        self.sequence += 1;
        let header = mcap::records::MessageHeader {
            channel_id: channel,
            sequence: self.sequence,
            log_time: stamp_ns.max(0) as u64,
            publish_time: stamp_ns.max(0) as u64,
        };
        self.writer
            .write_to_known_channel(&header, cdr)
            .map_err(|e| self.bad(e))
    }

    /// Writes the summary and moves the file into place.
    pub fn finish(mut self) -> Result<()> {
        self.writer.finish().map_err(|e| self.bad(e))?;
        let file = self
            .writer
            .into_inner()
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))
    }
}
