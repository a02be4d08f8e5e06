//! The two wire formats ROS messages are stored in: ROS 2's CDR (OMG XCDR1: a 4-byte
//! encapsulation header, then primitives aligned to their size relative to the end of that
//! header, in the byte order the header names) and ROS 1's serialisation (little-endian, packed).
//! A [`Reader`] walks either (the ROS 1 layout serves any packed little-endian file, such as a
//! saved map); a [`Writer`] produces little-endian CDR for the messages we publish.

/// How a message's bytes are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// ROS 2: CDR with an encapsulation header (rosbag2 sqlite3 and mcap, DDS).
    Cdr,
    /// ROS 1: little-endian, no alignment, no header (`.bag` files).
    Ros1,
}

/// A problem found while reading a message; the caller adds the file and topic.
pub type WireResult<T> = std::result::Result<T, String>;

/// A cursor over one serialised message.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset alignment counts from (CDR: after the encapsulation header).
    origin: usize,
    big_endian: bool,
    aligned: bool,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the first field of the message in `buf`.
    pub fn new(buf: &'a [u8], encoding: Encoding) -> WireResult<Self> {
        match encoding {
            Encoding::Ros1 => Ok(Self {
                buf,
                pos: 0,
                origin: 0,
                big_endian: false,
                aligned: false,
            }),
            Encoding::Cdr => {
                let header = buf.get(..4).ok_or("message shorter than its 4-byte CDR header")?;
                // Representation identifier: 0x0000 CDR_BE, 0x0001 CDR_LE (XCDR1, what ROS 2 uses).
                let big_endian = match (header[0], header[1]) {
                    (0, 0) => true,
                    (0, 1) => false,
                    (a, b) => return Err(format!("unsupported CDR representation 0x{a:02x}{b:02x}")),
                };
                Ok(Self {
                    buf,
                    pos: 4,
                    origin: 4,
                    big_endian,
                    aligned: true,
                })
            }
        }
    }

    fn align(&mut self, size: usize) {
        if self.aligned {
            let rel = self.pos - self.origin;
            self.pos += (size - rel % size) % size;
        }
    }

    /// The next `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> WireResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "the data end at byte {} but a field needs {n} bytes at byte {}",
                    self.buf.len(),
                    self.pos
                )
            })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> WireResult<[u8; N]> {
        self.align(N);
        let mut a: [u8; N] = self.bytes(N)?.try_into().expect("slice of N bytes");
        if self.big_endian {
            a.reverse();
        }
        Ok(a)
    }

    /// One byte.
    pub fn u8(&mut self) -> WireResult<u8> {
        Ok(self.bytes(1)?[0])
    }

    /// A boolean (one byte).
    pub fn bool(&mut self) -> WireResult<bool> {
        Ok(self.u8()? != 0)
    }

    /// A 32-bit unsigned integer.
    pub fn u32(&mut self) -> WireResult<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A 32-bit signed integer.
    pub fn i32(&mut self) -> WireResult<i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    /// A 64-bit unsigned integer.
    pub fn u64(&mut self) -> WireResult<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A 32-bit float.
    pub fn f32(&mut self) -> WireResult<f32> {
        Ok(f32::from_le_bytes(self.array()?))
    }

    /// A 64-bit float.
    pub fn f64(&mut self) -> WireResult<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// A sequence or string length, checked against the bytes left so that a corrupt length
    /// cannot ask for gigabytes.
    pub fn len(&mut self, min_element_bytes: usize) -> WireResult<usize> {
        let n = self.u32()? as usize;
        let left = self.buf.len() - self.pos;
        if n.saturating_mul(min_element_bytes.max(1)) > left {
            return Err(format!(
                "a length of {n} at byte {} runs past the end of the data",
                self.pos - 4
            ));
        }
        Ok(n)
    }

    /// A string (CDR counts and stores a terminating NUL; ROS 1 does not).
    pub fn string(&mut self) -> WireResult<String> {
        let n = self.len(1)?;
        let raw = self.bytes(n)?;
        let raw = if self.aligned {
            raw.strip_suffix(&[0]).unwrap_or(raw)
        } else {
            raw
        };
        String::from_utf8(raw.to_vec()).map_err(|_| "a string field is not UTF-8".to_string())
    }

    /// A `builtin_interfaces/Time` (ROS 2) or `time` (ROS 1) as nanoseconds since the epoch.
    pub fn time_ns(&mut self) -> WireResult<i64> {
        let sec = if self.aligned {
            self.i32()? as i64
        } else {
            self.u32()? as i64
        };
        let nsec = self.u32()? as i64;
        Ok(sec * 1_000_000_000 + nsec)
    }
}

/// Little-endian CDR output, for the messages we publish.
pub struct Writer {
    buf: Vec<u8>,
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    /// An empty message with the CDR_LE encapsulation header.
    pub fn new() -> Self {
        Self { buf: vec![0, 1, 0, 0] }
    }

    fn align(&mut self, size: usize) {
        let rel = self.buf.len() - 4;
        let pad = (size - rel % size) % size;
        self.buf.resize(self.buf.len() + pad, 0);
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// A 32-bit unsigned integer.
    pub fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A 32-bit signed integer.
    pub fn i32(&mut self, v: i32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A 64-bit float.
    pub fn f64(&mut self, v: f64) {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A string with its terminating NUL.
    pub fn string(&mut self, s: &str) {
        self.u32(s.len() as u32 + 1);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// A byte sequence.
    pub fn byte_seq(&mut self, data: &[u8]) {
        self.u32(data.len() as u32);
        self.buf.extend_from_slice(data);
    }

    /// A `builtin_interfaces/Time` from nanoseconds since the epoch.
    pub fn time_ns(&mut self, ns: i64) {
        self.i32(ns.div_euclid(1_000_000_000) as i32);
        self.u32(ns.rem_euclid(1_000_000_000) as u32);
    }

    /// The finished message.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdr_aligns_relative_to_the_header_and_strips_nul() {
        let mut w = Writer::new();
        w.u8(7);
        w.string("ab");
        w.f64(1.5);
        let bytes = w.finish();
        // header 4, u8 at 4, pad to 8, len at 8..12, "ab\0" 12..15, pad to 20 (16 after the
        // header), f64 at 20..28.
        assert_eq!(bytes.len(), 4 + 1 + 3 + 4 + 3 + 5 + 8);
        let mut r = Reader::new(&bytes, Encoding::Cdr).unwrap();
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.string().unwrap(), "ab");
        assert_eq!(r.f64().unwrap(), 1.5);
        assert!(r.u8().is_err());
    }

    #[test]
    fn big_endian_cdr_and_packed_ros1() {
        let be = [0u8, 0, 0, 0, 0, 0, 1, 2];
        assert_eq!(Reader::new(&be, Encoding::Cdr).unwrap().u32().unwrap(), 258);
        let ros1 = [9u8, 2, 0, 0, 0, 1, 2, 3, 4];
        let mut r = Reader::new(&ros1, Encoding::Ros1).unwrap();
        assert_eq!(r.u8().unwrap(), 9);
        assert_eq!(r.u32().unwrap(), 2);
        assert_eq!(r.bytes(2).unwrap(), &[1, 2]);
        assert_eq!(
            Reader::new(&[1, 1, 0, 0], Encoding::Cdr).err().unwrap(),
            "unsupported CDR representation 0x0101"
        );
    }

    #[test]
    fn lengths_past_the_end_are_refused() {
        let mut w = Writer::new();
        w.u32(1_000_000);
        let bytes = w.finish();
        let err = Reader::new(&bytes, Encoding::Cdr).unwrap().string().unwrap_err();
        assert!(err.contains("runs past the end of the data"), "{err}");
    }
}
