//! Finished segments in memory pages of their own.
//!
//! An HLS window holds every segment for its time in the playlist and as long again after it
//! (SPEC §HLS "Retention"): tens of allocations of a few hundred KiB to a few MiB, each of a
//! different size, freed in order as they expire. From the general-purpose heap that pattern
//! fragments: glibc serves such sizes from its arenas once it has seen them freed, and the holes
//! they leave are rarely the size of the next segment, so the process kept about 60% more than
//! it used (on the bench stream, 41 MiB of arena for 26 MiB in use). A segment copied into an
//! anonymous mapping of its own rounded-up size costs exactly its pages while held and returns
//! them to the system when its last reader drops it; the copy, one per segment, replaces the one
//! that trimmed its headroom.
//!
//! The pages are a sealed memory file's when one can be had ([`tributary_net::pages`]): the
//! HTTP server then sends them with `sendfile`, the kernel referencing the pages instead of
//! copying them once per viewer. Past that module's descriptor cap they are an anonymous
//! mapping (`memmap2`: safe anonymous maps, no `unsafe` here), written the ordinary way.

use bytes::Bytes;
use memmap2::MmapMut;

/// `bytes` in a mapping of its own, read-only: a sealed memory file's if possible, else
/// anonymous pages. Falls back to `bytes` as it is when no mapping can be made (out of address
/// space or map count: the heap is then no better off).
pub(crate) fn in_pages(bytes: Bytes) -> Bytes {
    if bytes.is_empty() {
        return bytes;
    }
    if let Some(sealed) = tributary_net::pages::sealed(&bytes) {
        return sealed;
    }
    let Ok(mut map) = MmapMut::map_anon(bytes.len()) else {
        return bytes;
    };
    map.copy_from_slice(&bytes);
    match map.make_read_only() {
        Ok(map) => Bytes::from_owner(map),
        Err(_) => bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_bytes() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let paged = in_pages(Bytes::from(data.clone()));
        assert_eq!(paged, data);
        assert_eq!(paged.slice(10..20), data[10..20]);
        assert!(in_pages(Bytes::new()).is_empty());
    }
}
