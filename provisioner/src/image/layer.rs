//! The image's one layer as a reproducible tar.gz: entries in a fixed order, mtime 0, uid/gid 0,
//! fixed modes, no user or group names, and a gzip header without a timestamp or file name — so
//! the same binary always gives the same bytes and digests.

use std::io::Write;

use flate2::{Compression, GzBuilder};

/// The non-root user the image runs as.
pub const UID: u32 = 10001;
pub const PASSWD: &str = "app:x:10001:10001:konnichiwa:/:/sbin/nologin\n";
pub const GROUP: &str = "app:x:10001:\n";

fn append(builder: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8], dir: bool) -> std::io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(if dir { tar::EntryType::Directory } else { tar::EntryType::Regular });
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    builder.append_data(&mut h, path, data)
}

/// (uncompressed tar, gzip of it): the program's binary at the root, and the user.
pub fn build(program: super::Program, binary: &[u8]) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Deterministic);
    append(&mut tar, program.package(), 0o755, binary, false)?;
    append(&mut tar, "etc/", 0o755, &[], true)?;
    append(&mut tar, "etc/group", 0o644, GROUP.as_bytes(), false)?;
    append(&mut tar, "etc/passwd", 0o644, PASSWD.as_bytes(), false)?;
    let raw = tar.into_inner()?;
    let mut gz = GzBuilder::new().mtime(0).write(Vec::new(), Compression::new(6));
    gz.write_all(&raw)?;
    let compressed = gz.finish()?;
    Ok((raw, compressed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_input_same_bytes() {
        let (a_raw, a_gz) = build(super::super::Program::App, b"#!binary").expect("layer");
        let (b_raw, b_gz) = build(super::super::Program::App, b"#!binary").expect("layer");
        assert_eq!(a_raw, b_raw);
        assert_eq!(a_gz, b_gz);
        assert_ne!(build(super::super::Program::App, b"other").expect("layer").1, a_gz);
        let mut archive = tar::Archive::new(a_raw.as_slice());
        let entries: Vec<(String, u32, u64)> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                let h = e.header();
                (e.path().expect("path").display().to_string(), h.mode().expect("mode"), h.mtime().expect("mtime"))
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("app".into(), 0o755, 0),
                ("etc/".into(), 0o755, 0),
                ("etc/group".into(), 0o644, 0),
                ("etc/passwd".into(), 0o644, 0)
            ]
        );
    }
}
