//! ROS 1 bag files (format 2.0): a walk over the records, with bz2 and lz4 chunks.
//!
//! Written here rather than taken from the `rosbag` crate, which needs the bag's index (a bag cut
//! short by a crash or a partial copy has none, and the crate panics on one) and so cannot replay
//! the complete messages of a truncated bag. The walk is short, bounds-checked, and fuzzed
//! (`fuzz/fuzz_targets/ros1_bag.rs`).

use super::{Container, Message, Topic, messages::types};
use crate::error::{Error, Result};
use crate::io::ros::wire::Encoding;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

const MAGIC: &[u8] = b"#ROSBAG V2.0\n";
const OP_MESSAGE: u8 = 0x02;
const OP_BAG_HEADER: u8 = 0x03;
const OP_CHUNK: u8 = 0x05;
const OP_CHUNK_INFO: u8 = 0x06;
const OP_CONNECTION: u8 = 0x07;

/// One record: its header fields and its data.
struct Record<'a> {
    fields: HashMap<&'a str, &'a [u8]>,
    data: &'a [u8],
}

impl<'a> Record<'a> {
    fn op(&self) -> Option<u8> {
        self.fields.get("op").and_then(|v| v.first().copied())
    }

    fn u32(&self, name: &str) -> Option<u32> {
        self.fields
            .get(name)
            .and_then(|v| Some(u32::from_le_bytes((*v).try_into().ok()?)))
    }

    fn u64(&self, name: &str) -> Option<u64> {
        self.fields
            .get(name)
            .and_then(|v| Some(u64::from_le_bytes((*v).try_into().ok()?)))
    }

    fn str(&self, name: &str) -> Option<&'a str> {
        self.fields.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }
}

fn take_u32(buf: &[u8], pos: usize) -> Option<u32> {
    Some(u32::from_le_bytes(buf.get(pos..pos.checked_add(4)?)?.try_into().ok()?))
}

fn take_block(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let len = take_u32(buf, pos)? as usize;
    let start = pos + 4;
    let end = start.checked_add(len)?;
    Some((buf.get(start..end)?, end))
}

/// `name=value` fields, each prefixed by its length.
fn parse_fields(mut header: &[u8]) -> Option<HashMap<&str, &[u8]>> {
    let mut fields = HashMap::new();
    while !header.is_empty() {
        let (field, end) = take_block(header, 0)?;
        let eq = field.iter().position(|b| *b == b'=')?;
        fields.insert(std::str::from_utf8(&field[..eq]).ok()?, &field[eq + 1..]);
        header = &header[end..];
    }
    Some(fields)
}

/// Records in `buf` from `pos`, each with the offset just past it; a record that does not fit is
/// an `Err` with the offset where it starts.
fn records(buf: &[u8], mut pos: usize) -> impl Iterator<Item = std::result::Result<(Record<'_>, usize), usize>> {
    std::iter::from_fn(move || {
        if pos >= buf.len() {
            return None;
        }
        let start = pos;
        let parsed = take_block(buf, pos).and_then(|(header, after)| {
            let (data, end) = take_block(buf, after)?;
            Some((
                Record {
                    fields: parse_fields(header)?,
                    data,
                },
                end,
            ))
        });
        match parsed {
            Some((r, end)) => {
                pos = end;
                Some(Ok((r, end)))
            }
            None => {
                pos = buf.len();
                Some(Err(start))
            }
        }
    })
}

/// A ROS 1 bag, mapped (or in memory).
pub struct Ros1Bag {
    path: PathBuf,
    bytes: Box<dyn AsRef<[u8]> + Send + Sync>,
}

/// A connection: which topic and type a message's `conn` number means.
#[derive(Debug, Clone)]
struct Connection {
    topic: String,
    msg_type: String,
}

impl Ros1Bag {
    /// Maps the file and checks its version line.
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only; a bag changed under us gives wrong bytes, which every
        // read below bounds-checks, not undefined behaviour in our code.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Self::from_bytes(path, Box::new(map))
    }

    /// A bag held in memory; `path` names it in errors.
    pub fn from_bytes(path: &Path, bytes: Box<dyn AsRef<[u8]> + Send + Sync>) -> Result<Self> {
        if !(*bytes).as_ref().starts_with(MAGIC) {
            return Err(Error::input(
                path,
                "not a ROS 1 bag: it does not start with '#ROSBAG V2.0'",
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
        })
    }

    fn data(&self) -> &[u8] {
        (*self.bytes).as_ref()
    }

    fn bad(&self, msg: impl Into<String>) -> Error {
        Error::input(&self.path, msg)
    }

    /// Where the index section starts, when the bag was closed properly.
    fn index_pos(&self) -> Option<usize> {
        let (header, _) = records(self.data(), MAGIC.len()).next()?.ok()?;
        let pos = header.u64("index_pos")? as usize;
        (header.op() == Some(OP_BAG_HEADER) && pos > MAGIC.len() && pos < self.data().len()).then_some(pos)
    }

    fn connection(record: &Record<'_>) -> Option<(u32, Connection)> {
        let fields = parse_fields(record.data)?;
        let text = |n: &str| fields.get(n).and_then(|v| std::str::from_utf8(v).ok());
        Some((
            record.u32("conn")?,
            Connection {
                topic: record.str("topic").or_else(|| text("topic"))?.to_string(),
                msg_type: types::normalise(text("type")?),
            },
        ))
    }

    fn decompress(&self, record: &Record<'_>, at: usize) -> Result<Vec<u8>> {
        let size = record
            .u32("size")
            .ok_or_else(|| self.bad(format!("chunk at byte {at} has no size")))? as usize;
        let compression = record.str("compression").unwrap_or("none");
        // The header's size is untrusted: reserve at most 64 MB up front, let a true larger chunk grow.
        let mut out = Vec::with_capacity(size.min(64 << 20));
        let read = match compression {
            "none" => {
                out.extend_from_slice(record.data);
                Ok(out.len())
            }
            "bz2" => bzip2::read::BzDecoder::new(record.data)
                .take(size as u64 + 1)
                .read_to_end(&mut out),
            "lz4" => lz4::Decoder::new(record.data).and_then(|d| d.take(size as u64 + 1).read_to_end(&mut out)),
            other => return Err(self.bad(format!("chunk at byte {at}: unknown compression '{other}'"))),
        };
        match read {
            Ok(n) if n == size => Ok(out),
            Ok(n) => Err(self.bad(format!(
                "{compression} chunk at byte {at} holds {n} bytes, its header says {size}"
            ))),
            Err(e) => Err(self.bad(format!("{compression} chunk at byte {at} does not decompress: {e}"))),
        }
    }

    fn truncated(&self, at: usize, messages: usize) -> Error {
        self.bad(format!(
            "truncated or corrupt at byte {at} of {} (the {messages} complete messages before it were read)",
            self.data().len()
        ))
    }

    /// Walks every record in file order: connections are registered, messages on `wanted`
    /// topics (all when `None`) handed to `visit` until it returns false.
    fn walk(
        &self,
        wanted: Option<&[&str]>,
        connections: &mut HashMap<u32, Connection>,
        visit: &mut dyn FnMut(Message<'_>) -> bool,
    ) -> Result<()> {
        let delivered = std::cell::Cell::new(0usize);
        let mut deliver = |r: &Record<'_>, conns: &HashMap<u32, Connection>| -> Option<bool> {
            let conn = conns.get(&r.u32("conn")?)?;
            if wanted.is_some_and(|w| !w.contains(&conn.topic.as_str())) {
                return Some(true);
            }
            delivered.set(delivered.get() + 1);
            Some(visit(Message {
                topic: &conn.topic,
                msg_type: &conn.msg_type,
                data: r.data,
            }))
        };
        for item in records(self.data(), MAGIC.len()) {
            let (record, end) = item.map_err(|at| self.truncated(at, delivered.get()))?;
            match record.op() {
                Some(OP_CONNECTION) => {
                    connections.extend(Self::connection(&record));
                }
                Some(OP_MESSAGE) if deliver(&record, connections) == Some(false) => return Ok(()),
                Some(OP_CHUNK) => {
                    let at = end - record.data.len() - 4;
                    let chunk = self.decompress(&record, at)?;
                    for inner in records(&chunk, 0) {
                        let (r, _) =
                            inner.map_err(|_| self.bad(format!("chunk at byte {at} holds a broken record")))?;
                        match r.op() {
                            Some(OP_CONNECTION) => connections.extend(Self::connection(&r)),
                            Some(OP_MESSAGE) if deliver(&r, connections) == Some(false) => return Ok(()),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Container for Ros1Bag {
    fn encoding(&self) -> Encoding {
        Encoding::Ros1
    }

    fn topics(&self) -> Result<Vec<Topic>> {
        let mut connections = HashMap::new();
        let mut counts: Option<HashMap<u32, u64>> = None;
        if let Some(pos) = self.index_pos() {
            let mut c = HashMap::new();
            for (record, _) in records(self.data(), pos).map_while(|r| r.ok()) {
                match record.op() {
                    Some(OP_CONNECTION) => connections.extend(Self::connection(&record)),
                    Some(OP_CHUNK_INFO) => {
                        for pair in record.data.chunks_exact(8) {
                            let conn = u32::from_le_bytes(pair[..4].try_into().expect("4 bytes"));
                            *c.entry(conn).or_default() +=
                                u32::from_le_bytes(pair[4..].try_into().expect("4 bytes")) as u64;
                        }
                    }
                    _ => {}
                }
            }
            counts = Some(c);
        } else {
            // No index (a bag cut short): find the connections by walking it; a broken tail is
            // reported when the messages are read.
            let _ = self.walk(Some(&[]), &mut connections, &mut |_| true);
        }
        let mut by_topic: Vec<Topic> = Vec::new();
        for (id, c) in connections {
            let n = counts.as_ref().map(|m| m.get(&id).copied().unwrap_or(0));
            match by_topic.iter_mut().find(|t| t.name == c.topic) {
                Some(t) => t.count = t.count.zip(n).map(|(a, b)| a + b),
                None => by_topic.push(Topic {
                    name: c.topic,
                    msg_type: c.msg_type,
                    count: n,
                }),
            }
        }
        by_topic.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(by_topic)
    }

    fn for_each(&self, topics: &[&str], visit: &mut dyn FnMut(Message<'_>) -> bool) -> Result<()> {
        self.walk(Some(topics), &mut HashMap::new(), visit)
    }
}
