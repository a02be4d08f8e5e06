//! rosbag2 recordings: a folder with `metadata.yaml` and its storage files, or one storage file
//! alone, in either storage: MCAP (the `mcap` crate) or SQLite 3 (`rusqlite` with SQLite bundled).

use super::{Container, Message, Topic, messages::types};
use crate::error::{Error, Result};
use crate::io::ros::wire::Encoding;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The parts of `metadata.yaml` we use.
#[derive(Debug, serde::Deserialize)]
struct Metadata {
    rosbag2_bagfile_information: BagInfo,
}

#[derive(Debug, serde::Deserialize)]
struct BagInfo {
    #[serde(default)]
    storage_identifier: String,
    #[serde(default)]
    relative_file_paths: Vec<String>,
    #[serde(default)]
    compression_format: String,
    #[serde(default)]
    compression_mode: String,
}

/// A rosbag2 folder's storage files, read one after the other.
pub struct Rosbag2 {
    files: Vec<Box<dyn Container>>,
}

impl Rosbag2 {
    /// Opens the folder `dir` through its `metadata.yaml`.
    pub fn open_folder(dir: &Path) -> Result<Self> {
        let meta_path = dir.join("metadata.yaml");
        let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
        let meta: Metadata = serde_yaml_ng::from_str(&text)
            .map_err(|e| Error::input(&meta_path, format!("not rosbag2 metadata: {e}")))?;
        let info = meta.rosbag2_bagfile_information;
        let message_zstd = match (
            info.compression_mode.to_ascii_uppercase().as_str(),
            info.compression_format.as_str(),
        ) {
            ("" | "NONE", _) => false,
            ("MESSAGE", "zstd") => true,
            (mode, format) => {
                return Err(Error::input(
                    &meta_path,
                    format!(
                        "{mode} compression '{format}' is not supported; `ros2 bag convert` can write it uncompressed"
                    ),
                ));
            }
        };
        if info.relative_file_paths.is_empty() {
            return Err(Error::input(&meta_path, "lists no storage files"));
        }
        let files = info
            .relative_file_paths
            .iter()
            .map(|rel| {
                let path = dir.join(rel);
                let storage = match info.storage_identifier.as_str() {
                    "mcap" => Storage::Mcap,
                    "sqlite3" => Storage::Sqlite,
                    _ => Storage::from_path(&path).ok_or_else(|| {
                        Error::input(&meta_path, format!("unknown storage '{}'", info.storage_identifier))
                    })?,
                };
                storage.open(&path, message_zstd)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { files })
    }
}

impl Container for Rosbag2 {
    fn encoding(&self) -> Encoding {
        Encoding::Cdr
    }

    fn topics(&self) -> Result<Vec<Topic>> {
        let mut all: Vec<Topic> = Vec::new();
        for f in &self.files {
            for t in f.topics()? {
                match all.iter_mut().find(|a| a.name == t.name) {
                    Some(a) => a.count = a.count.zip(t.count).map(|(x, y)| x + y),
                    None => all.push(t),
                }
            }
        }
        Ok(all)
    }

    fn for_each(&self, topics: &[&str], visit: &mut dyn FnMut(Message<'_>) -> bool) -> Result<()> {
        let mut go_on = true;
        for f in &self.files {
            f.for_each(topics, &mut |m| {
                go_on = visit(m);
                go_on
            })?;
            if !go_on {
                break;
            }
        }
        Ok(())
    }
}

/// The two rosbag2 storage plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// `rosbag2_storage_mcap` (the default since ROS 2 Iron).
    Mcap,
    /// `rosbag2_storage_default_plugins` sqlite3 (the default on Humble).
    Sqlite,
}

impl Storage {
    /// The storage a file's extension names.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "mcap" => Some(Self::Mcap),
            "db3" => Some(Self::Sqlite),
            _ => None,
        }
    }

    /// Opens one storage file; `message_zstd` when every message is zstd-compressed.
    pub fn open(self, path: &Path, message_zstd: bool) -> Result<Box<dyn Container>> {
        if !path.is_file() {
            return Err(Error::input(path, "storage file listed in metadata.yaml is missing"));
        }
        Ok(match self {
            Self::Mcap => Box::new(McapFile::open(path, message_zstd)?),
            Self::Sqlite => Box::new(SqliteFile::open(path, message_zstd)?),
        })
    }
}

fn unzstd(path: &Path, data: &[u8]) -> Result<Vec<u8>> {
    zstd::decode_all(data)
        .map_err(|e| Error::input(path, format!("a zstd-compressed message does not decompress: {e}")))
}

/// One MCAP file, mapped (or in memory).
pub struct McapFile {
    path: PathBuf,
    bytes: Box<dyn AsRef<[u8]> + Send + Sync>,
    message_zstd: bool,
}

impl McapFile {
    /// Maps the file and checks its magic.
    pub fn open(path: &Path, message_zstd: bool) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: read-only map; the mcap crate bounds-checks every read of it.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Self::from_bytes(path, Box::new(map), message_zstd)
    }

    /// An MCAP file held in memory; `path` names it in errors.
    pub fn from_bytes(path: &Path, bytes: Box<dyn AsRef<[u8]> + Send + Sync>, message_zstd: bool) -> Result<Self> {
        if !(*bytes).as_ref().starts_with(mcap::MAGIC) {
            return Err(Error::input(
                path,
                "not an MCAP file: it does not start with MCAP's magic",
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            message_zstd,
        })
    }

    fn data(&self) -> &[u8] {
        (*self.bytes).as_ref()
    }

    fn stream(&self) -> Result<mcap::read::RawMessageStream<'_>> {
        mcap::read::RawMessageStream::new_with_options(self.data(), mcap::read::Options::IgnoreEndMagic.into())
            .map_err(|e| Error::input(&self.path, format!("not a readable MCAP file: {e}")))
    }
}

fn channel_topic(channel: &mcap::Channel<'_>) -> Topic {
    Topic {
        name: channel.topic.clone(),
        msg_type: types::normalise(channel.schema.as_ref().map_or("", |s| s.name.as_str())),
        count: None,
    }
}

impl Container for McapFile {
    fn encoding(&self) -> Encoding {
        Encoding::Cdr
    }

    fn topics(&self) -> Result<Vec<Topic>> {
        if let Ok(Some(summary)) = mcap::Summary::read(self.data()) {
            let counts = summary.stats.as_ref().map(|s| &s.channel_message_counts);
            let mut topics: Vec<Topic> = summary
                .channels
                .values()
                .map(|c| Topic {
                    count: counts.map(|m| m.get(&c.id).copied().unwrap_or(0)),
                    ..channel_topic(c)
                })
                .collect();
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            return Ok(topics);
        }
        // No summary (a file cut short): the channels are found by reading it; a broken tail is
        // reported when the messages are read.
        let mut stream = self.stream()?;
        let mut seen: HashMap<u16, Topic> = HashMap::new();
        while let Some(Ok(m)) = stream.next() {
            if let Some(c) = stream.get_channel(m.header.channel_id) {
                seen.entry(c.id).or_insert_with(|| channel_topic(&c));
            }
        }
        let mut topics: Vec<Topic> = seen.into_values().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    fn for_each(&self, topics: &[&str], visit: &mut dyn FnMut(Message<'_>) -> bool) -> Result<()> {
        let mut stream = self.stream()?;
        let mut delivered = 0;
        while let Some(item) = stream.next() {
            let m = item.map_err(|e| {
                Error::input(
                    &self.path,
                    format!("truncated or corrupt after {delivered} complete messages: {e}"),
                )
            })?;
            let Some(channel) = stream.get_channel(m.header.channel_id) else {
                continue;
            };
            if !topics.contains(&channel.topic.as_str()) {
                continue;
            }
            let owned;
            let data: &[u8] = if self.message_zstd {
                owned = unzstd(&self.path, &m.data)?;
                &owned
            } else {
                &m.data
            };
            delivered += 1;
            let schema = channel
                .schema
                .as_ref()
                .map_or(String::new(), |s| types::normalise(&s.name));
            if !visit(Message {
                topic: &channel.topic,
                msg_type: &schema,
                data,
            }) {
                break;
            }
        }
        Ok(())
    }
}

/// Topics with their ids, not counted.
const LISTED_TOPICS: &str = "SELECT t.id, t.name, t.type, NULL FROM topics t ORDER BY t.name";

/// One rosbag2 SQLite 3 file.
pub struct SqliteFile {
    path: PathBuf,
    db: rusqlite::Connection,
    message_zstd: bool,
}

impl SqliteFile {
    /// Opens the database read-only and checks it has rosbag2's tables.
    pub fn open(path: &Path, message_zstd: bool) -> Result<Self> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let db = rusqlite::Connection::open_with_flags(path, flags)
            .map_err(|e| Error::input(path, format!("not an SQLite database: {e}")))?;
        let file = Self {
            path: path.to_path_buf(),
            db,
            message_zstd,
        };
        let tables: i64 = file
            .db
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('topics', 'messages')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| file.sql(e))?;
        if tables != 2 {
            return Err(Error::input(
                path,
                "not a rosbag2 database: no 'topics' and 'messages' tables",
            ));
        }
        Ok(file)
    }

    fn sql(&self, e: rusqlite::Error) -> Error {
        let hint = match e.sqlite_error_code() {
            // SQLite refuses a database cut short anywhere, even its complete pages.
            Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
                " (a cut-short .db3 cannot be read; `sqlite3 FILE .recover` salvages what it holds)"
            }
            _ => "",
        };
        Error::input(&self.path, format!("SQLite: {e}{hint}"))
    }

    /// Topics with their ids; counted when the messages table reads whole (a damaged file is
    /// still listed, and read up to the damage).
    fn topic_rows(&self) -> Result<Vec<(i64, Topic)>> {
        const COUNTED: &str = "SELECT t.id, t.name, t.type, \
             (SELECT COUNT(*) FROM messages m WHERE m.topic_id = t.id) FROM topics t ORDER BY t.name";
        self.query_topics(COUNTED).or_else(|_| self.query_topics(LISTED_TOPICS))
    }

    fn query_topics(&self, sql: &str) -> Result<Vec<(i64, Topic)>> {
        let mut stmt = self.db.prepare(sql).map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    Topic {
                        name: r.get(1)?,
                        msg_type: types::normalise(&r.get::<_, String>(2)?),
                        count: r.get::<_, Option<i64>>(3)?.map(|c| c as u64),
                    },
                ))
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.sql(e))
    }
}

impl Container for SqliteFile {
    fn encoding(&self) -> Encoding {
        Encoding::Cdr
    }

    fn topics(&self) -> Result<Vec<Topic>> {
        Ok(self.topic_rows()?.into_iter().map(|(_, t)| t).collect())
    }

    fn for_each(&self, topics: &[&str], visit: &mut dyn FnMut(Message<'_>) -> bool) -> Result<()> {
        // Listed without counts: counting scans the whole messages table, which reading does anyway.
        let wanted: HashMap<i64, Topic> = self
            .query_topics(LISTED_TOPICS)?
            .into_iter()
            .filter(|(_, t)| topics.contains(&t.name.as_str()))
            .collect();
        self.visit_rows(&wanted, visit)
    }
}

impl SqliteFile {
    /// Visits the messages of `wanted` topics in time order, as `ros2 bag play` reads them.
    fn visit_rows(&self, wanted: &HashMap<i64, Topic>, visit: &mut dyn FnMut(Message<'_>) -> bool) -> Result<()> {
        let ids: Vec<String> = wanted.keys().map(|k| k.to_string()).collect();
        let sql = format!(
            "SELECT topic_id, data FROM messages WHERE topic_id IN ({}) ORDER BY timestamp, id",
            ids.join(",")
        );
        let mut stmt = self.db.prepare(&sql).map_err(|e| self.sql(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.sql(e))?;
        let mut delivered = 0;
        loop {
            let row = rows.next().map_err(|e| {
                let msg = format!("truncated or corrupt after {delivered} complete messages: {e}");
                Error::input(&self.path, msg)
            })?;
            let Some(row) = row else { break };
            let read = || -> rusqlite::Result<(i64, &[u8])> { Ok((row.get(0)?, row.get_ref(1)?.as_blob()?)) };
            let (topic_id, data) = read().map_err(|e| self.sql(e))?;
            let topic = &wanted[&topic_id];
            let owned;
            let data = if self.message_zstd {
                owned = unzstd(&self.path, data)?;
                &owned[..]
            } else {
                data
            };
            delivered += 1;
            if !visit(Message {
                topic: &topic.name,
                msg_type: &topic.msg_type,
                data,
            }) {
                break;
            }
        }
        Ok(())
    }
}
