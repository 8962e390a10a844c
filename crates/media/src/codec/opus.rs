//! Opus packets (RFC 6716): how long one lasts, from its TOC byte.

/// The duration of an Opus packet in 48 kHz samples, from its TOC byte and, for code-3
/// packets, its frame count byte (RFC 6716 §3.1); 0 for an empty packet or a code-3 packet
/// cut before its count.
///
/// ```
/// use tributary_media::codec::opus;
///
/// assert_eq!(opus::packet_samples(&[0xfc]), 960); // CELT 20 ms, one frame
/// assert_eq!(opus::packet_samples(&[0x79, 0]), 1920); // SILK 20 ms, two frames
/// assert_eq!(opus::packet_samples(&[0x1b, 0x03]), 8640); // SILK 60 ms, code 3, 3 frames
/// assert_eq!(opus::packet_samples(&[]), 0);
/// ```
pub fn packet_samples(packet: &[u8]) -> u32 {
    let Some(&toc) = packet.first() else {
        return 0;
    };
    let config = toc >> 3;
    // Frame sizes in 2.5 ms units (120 samples at 48 kHz).
    let frame: u32 = match config {
        0..=11 => [4, 8, 16, 24][usize::from(config % 4)],
        12..=15 => [4, 8][usize::from(config % 2)],
        _ => [1, 2, 4, 8][usize::from(config % 4)],
    };
    let count = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => packet.get(1).map_or(0, |c| u32::from(c & 0x3F)),
    };
    frame * count * 120
}
