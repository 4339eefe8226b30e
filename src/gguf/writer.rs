//! A streaming GGUF v3 writer: metadata and tensor infos are collected first, then the file is
//! written in one pass while a caller-supplied closure produces each tensor's data, so a model
//! of any size is written without holding its weights in memory.

use std::io::{self, BufWriter, Write};

use super::tensor::{align_up, shape_size};
use super::{GgmlType, TensorInfo, Value, ValueType, DEFAULT_ALIGNMENT, GGUF_MAGIC};

/// Key that sets the data alignment (a `u32` power of two).
pub const ALIGNMENT_KEY: &str = "general.alignment";

/// Builder and streaming writer of a GGUF v3 file.
#[derive(Debug, Clone, Default)]
pub struct Writer {
    metadata: Vec<(String, Value)>,
    tensors: Vec<(String, Vec<u64>, GgmlType)>,
}

impl Writer {
    /// An empty file: no metadata, no tensors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `v`; a key set twice keeps its first position and its last value.
    pub fn metadata(&mut self, key: &str, v: Value) {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = v,
            None => self.metadata.push((key.to_string(), v)),
        }
    }

    /// Adds a tensor; `dims` innermost first (`ne[0]` is the row length).
    pub fn tensor(&mut self, name: &str, dims: &[u64], ty: GgmlType) {
        self.tensors.push((name.to_string(), dims.to_vec(), ty));
    }

    /// The metadata set so far, in file order.
    pub fn metadata_entries(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// Data alignment: `general.alignment` when set, else 32.
    pub fn alignment(&self) -> io::Result<u64> {
        let Some((_, v)) = self.metadata.iter().find(|(k, _)| k == ALIGNMENT_KEY) else {
            return Ok(DEFAULT_ALIGNMENT);
        };
        match v {
            Value::U32(a) if a.is_power_of_two() => Ok(u64::from(*a)),
            other => Err(invalid(format!(
                "{ALIGNMENT_KEY} must be a uint32 power of two, got {other:?}"
            ))),
        }
    }

    /// The tensor infos with their data offsets as they will be written.
    pub fn tensor_infos(&self) -> io::Result<Vec<TensorInfo>> {
        let alignment = self.alignment()?;
        let mut offset = 0u64;
        let mut infos = Vec::with_capacity(self.tensors.len());
        check_tensor_names(&self.tensors)?;
        for (name, dims, ty) in &self.tensors {
            let (n_elements, n_bytes) = shape_size(dims, *ty)
                .map_err(|e| invalid(format!("tensor {name:?} of type {ty}: {e}")))?;
            infos.push(TensorInfo {
                name: name.clone(),
                dims: dims.clone(),
                ggml_type: *ty,
                offset,
                n_elements,
                n_bytes,
            });
            offset = offset
                .checked_add(n_bytes)
                .and_then(|end| align_up(end, alignment))
                .ok_or_else(|| invalid("tensor data size overflows u64".into()))?;
        }
        Ok(infos)
    }

    /// Writes the whole file to `out` and returns its size in bytes. `fill(i, info, w)` must
    /// write exactly `info.n_bytes` bytes of tensor `i`; the writer adds the padding.
    pub fn write_to<W: Write>(
        &self,
        out: W,
        mut fill: impl FnMut(usize, &TensorInfo, &mut dyn Write) -> io::Result<()>,
    ) -> io::Result<u64> {
        let alignment = self.alignment()?;
        let infos = self.tensor_infos()?;
        let mut w = Counted::new(BufWriter::with_capacity(1 << 20, out));
        self.write_header(&mut w, &infos)?;
        pad(&mut w, alignment)?;
        for (i, info) in infos.iter().enumerate() {
            write_tensor_data(&mut w, i, info, &mut fill)?;
            pad(&mut w, alignment)?;
        }
        w.flush()?;
        Ok(w.count)
    }

    fn write_header(&self, w: &mut impl Write, infos: &[TensorInfo]) -> io::Result<()> {
        w.write_all(&GGUF_MAGIC)?;
        w.write_all(&3u32.to_le_bytes())?;
        w.write_all(&(infos.len() as u64).to_le_bytes())?;
        w.write_all(&(self.metadata.len() as u64).to_le_bytes())?;
        for (key, value) in &self.metadata {
            write_string(w, key)?;
            w.write_all(&value.value_type().id().to_le_bytes())?;
            write_value(w, value)?;
        }
        for info in infos {
            write_tensor_info(w, info)?;
        }
        Ok(())
    }
}

/// Longest tensor name llama.cpp loads, exclusive (`GGML_MAX_NAME`).
pub const MAX_TENSOR_NAME_BYTES: usize = 64;

/// llama.cpp refuses duplicate tensor names and names of 64 bytes or more.
fn check_tensor_names(tensors: &[(String, Vec<u64>, GgmlType)]) -> io::Result<()> {
    if let Some((name, ..)) = tensors.iter().find(|t| t.0.len() >= MAX_TENSOR_NAME_BYTES) {
        return Err(invalid(format!(
            "tensor name {name:?} has {} bytes, llama.cpp allows at most {}",
            name.len(),
            MAX_TENSOR_NAME_BYTES - 1
        )));
    }
    let mut names: Vec<&str> = tensors.iter().map(|t| t.0.as_str()).collect();
    names.sort_unstable();
    match names.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(invalid(format!("duplicate tensor name {:?}", w[0]))),
        None => Ok(()),
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn write_tensor_info(w: &mut impl Write, info: &TensorInfo) -> io::Result<()> {
    write_string(w, &info.name)?;
    w.write_all(&(info.dims.len() as u32).to_le_bytes())?;
    for d in &info.dims {
        w.write_all(&d.to_le_bytes())?;
    }
    w.write_all(&info.ggml_type.id().to_le_bytes())?;
    w.write_all(&info.offset.to_le_bytes())
}

fn write_tensor_data<W: Write>(
    w: &mut Counted<W>,
    i: usize,
    info: &TensorInfo,
    fill: &mut impl FnMut(usize, &TensorInfo, &mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut limited = Limited {
        inner: w,
        left: info.n_bytes,
    };
    fill(i, info, &mut limited)?;
    if limited.left != 0 {
        return Err(invalid(format!(
            "fill wrote {} of the {} bytes of tensor {i} {:?}",
            info.n_bytes - limited.left,
            info.n_bytes,
            info.name
        )));
    }
    Ok(())
}

fn pad<W: Write>(w: &mut Counted<W>, alignment: u64) -> io::Result<()> {
    let target =
        align_up(w.count, alignment).ok_or_else(|| invalid("file size overflow".into()))?;
    let zeros = [0u8; 64];
    let mut left = target - w.count;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        w.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Writes a GGUF string: u64 length, then the UTF-8 bytes.
pub(crate) fn write_string(w: &mut impl Write, s: &str) -> io::Result<()> {
    w.write_all(&(s.len() as u64).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

/// Writes a value's payload (without its type tag).
pub(crate) fn write_value(w: &mut impl Write, v: &Value) -> io::Result<()> {
    match v {
        Value::U8(x) => w.write_all(&x.to_le_bytes()),
        Value::I8(x) => w.write_all(&x.to_le_bytes()),
        Value::U16(x) => w.write_all(&x.to_le_bytes()),
        Value::I16(x) => w.write_all(&x.to_le_bytes()),
        Value::U32(x) => w.write_all(&x.to_le_bytes()),
        Value::I32(x) => w.write_all(&x.to_le_bytes()),
        Value::U64(x) => w.write_all(&x.to_le_bytes()),
        Value::I64(x) => w.write_all(&x.to_le_bytes()),
        Value::F32(x) => w.write_all(&x.to_le_bytes()),
        Value::F64(x) => w.write_all(&x.to_le_bytes()),
        Value::Bool(x) => w.write_all(&[u8::from(*x)]),
        Value::String(s) => write_string(w, s),
        Value::Array(t, items) => write_array(w, *t, items),
    }
}

fn write_array(w: &mut impl Write, t: ValueType, items: &[Value]) -> io::Result<()> {
    w.write_all(&t.id().to_le_bytes())?;
    w.write_all(&(items.len() as u64).to_le_bytes())?;
    for item in items {
        if item.value_type() != t {
            return Err(invalid(format!(
                "array of {t} holds a {} value",
                item.value_type()
            )));
        }
        write_value(w, item)?;
    }
    Ok(())
}

/// Counts the bytes written through it.
struct Counted<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Counted<W> {
    fn new(inner: W) -> Self {
        Self { inner, count: 0 }
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Refuses to write more than `left` bytes, so a fill closure cannot overrun its tensor.
struct Limited<'a, W> {
    inner: &'a mut W,
    left: u64,
}

impl<W: Write> Write for Limited<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(invalid(format!(
                "fill wrote past the end of its tensor ({} bytes left, {} offered)",
                self.left,
                buf.len()
            )));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zeros(_: usize, info: &TensorInfo, w: &mut dyn Write) -> io::Result<()> {
        io::copy(&mut io::repeat(0).take(info.n_bytes), w).map(|_| ())
    }

    use std::io::Read;

    #[test]
    fn layout_is_aligned_and_padded() {
        let mut w = Writer::new();
        w.metadata("general.architecture", Value::String("llama".into()));
        w.tensor("a", &[3], GgmlType::F32);
        w.tensor("b", &[256, 2], GgmlType::Q4_K);
        let infos = w.tensor_infos().unwrap();
        assert_eq!(infos[0].offset, 0);
        assert_eq!(infos[0].n_bytes, 12);
        assert_eq!(infos[1].offset, 32);
        assert_eq!(infos[1].n_bytes, 288);
        let mut buf = Vec::new();
        let n = w.write_to(&mut buf, zeros).unwrap();
        assert_eq!(n, buf.len() as u64);
        assert_eq!(n % 32, 0);
        assert_eq!(&buf[..4], b"GGUF");
    }

    #[test]
    fn custom_alignment_is_used_and_bad_alignment_rejected() {
        let mut w = Writer::new();
        w.metadata(ALIGNMENT_KEY, Value::U32(64));
        w.tensor("a", &[3], GgmlType::F32);
        w.tensor("b", &[3], GgmlType::F32);
        assert_eq!(w.tensor_infos().unwrap()[1].offset, 64);
        w.metadata(ALIGNMENT_KEY, Value::U32(48));
        let err = w.write_to(Vec::new(), zeros).unwrap_err();
        assert!(err.to_string().contains("power of two"), "{err}");
    }

    #[test]
    fn fill_must_write_exactly_n_bytes() {
        let mut w = Writer::new();
        w.tensor("t", &[4], GgmlType::F32);
        let short = w.write_to(Vec::new(), |_, _, out| out.write_all(&[0; 15]));
        assert!(short
            .unwrap_err()
            .to_string()
            .contains("wrote 15 of the 16"));
        let long = w.write_to(Vec::new(), |_, _, out| out.write_all(&[0; 17]));
        assert!(long.unwrap_err().to_string().contains("past the end"));
    }

    #[test]
    fn partial_blocks_and_mixed_arrays_are_rejected() {
        let mut w = Writer::new();
        w.tensor("t", &[32], GgmlType::Q4_K);
        assert!(w.write_to(Vec::new(), zeros).is_err());
        let mut w = Writer::new();
        w.metadata("x", Value::Array(ValueType::U8, vec![Value::I8(1)]));
        assert!(w.write_to(Vec::new(), zeros).is_err());
    }

    #[test]
    fn names_llama_cpp_would_refuse_are_rejected() {
        let mut w = Writer::new();
        w.tensor("t", &[4], GgmlType::F32);
        w.tensor("t", &[4], GgmlType::F32);
        let err = w.write_to(Vec::new(), zeros).unwrap_err();
        assert!(
            err.to_string().contains("duplicate tensor name \"t\""),
            "{err}"
        );
        let mut w = Writer::new();
        w.tensor(&"x".repeat(64), &[4], GgmlType::F32);
        let err = w.write_to(Vec::new(), zeros).unwrap_err();
        assert!(err.to_string().contains("at most 63"), "{err}");
    }

    #[test]
    fn setting_a_key_twice_replaces_it() {
        let mut w = Writer::new();
        w.metadata("k", Value::U32(1));
        w.metadata("j", Value::U32(2));
        w.metadata("k", Value::U32(3));
        assert_eq!(
            w.metadata_entries(),
            &[("k".into(), Value::U32(3)), ("j".into(), Value::U32(2))]
        );
    }
}
