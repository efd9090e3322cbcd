//! Tests of the aws-chunked decoder: the AWS documentation examples, frame splitting, and
//! every way a body can be bad.

use bytes::Bytes;

use super::super::test_support::{
    doc_mode, doc_signing_key, drain, encode_chunked, frames_at, hex32,
};
use super::{AuthError, ChunkedMode};

/// Seed, chunk and final signatures of the documentation's chunked PUT (64 KiB + 1 KiB of
/// 'a'), from "Signature Calculations for the Authorization Header: Transferring Payload in
/// Multiple Chunks".
const DOC_SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const DOC_CHUNK_SIGNATURES: [&str; 3] = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
];
/// The same upload with a trailing CRC32C, from "Signature Calculations for Trailing
/// Headers".
const DOC_TRAILER_SEED: &str = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
const DOC_TRAILER_CHUNK_SIGNATURES: [&str; 3] = [
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
];
const DOC_TRAILER_SIGNATURE: &str =
    "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435";

/// The documentation's body, written out from its published signatures.
fn doc_body(signatures: [&str; 3], trailer: Option<&str>) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(format!("10000;chunk-signature={}\r\n", signatures[0]).as_bytes());
    body.extend_from_slice(&[b'a'; 65536]);
    body.extend_from_slice(format!("\r\n400;chunk-signature={}\r\n", signatures[1]).as_bytes());
    body.extend_from_slice(&[b'a'; 1024]);
    body.extend_from_slice(format!("\r\n0;chunk-signature={}\r\n", signatures[2]).as_bytes());
    if let Some(signature) = trailer {
        body.extend_from_slice(b"x-amz-checksum-crc32c:sOO8/Q==\r\n");
        body.extend_from_slice(format!("x-amz-trailer-signature:{signature}\r\n").as_bytes());
    }
    body.extend_from_slice(b"\r\n");
    body
}

fn one_frame(body: &[u8]) -> Vec<Result<Bytes, String>> {
    frames_at(body, &[])
}

fn byte_frames(body: &[u8]) -> Vec<Result<Bytes, String>> {
    frames_at(body, &(1..body.len()).collect::<Vec<_>>())
}

/// A small signed body with three data chunks, used where every split point is tried.
fn small_chunks() -> Vec<Vec<u8>> {
    vec![
        b"hello, world".to_vec(),
        (0..=255u8).cycle().take(300).collect(),
        b"\r\n0;chunk-signature=not-a-header".to_vec(),
        Vec::new(),
    ]
}

fn small_body(trailers: Option<&[(&str, &str)]>) -> (Vec<u8>, Vec<u8>) {
    let chunks = small_chunks();
    let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    let body = encode_chunked(Some(&doc_signing_key()), hex32(DOC_SEED), &refs, trailers);
    (body, chunks.concat())
}

#[test]
fn aws_doc_example_decodes() {
    let body = doc_body(DOC_CHUNK_SIGNATURES, None);
    assert_eq!(
        body.len(),
        66824,
        "Content-Length of the documentation example"
    );
    let mode = doc_mode(hex32(DOC_SEED), false).with_decoded_length(Some(66560));
    for frames in [one_frame(&body), byte_frames(&body)] {
        let decoded = drain(frames, mode.clone());
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.data, vec![b'a'; 66560]);
    }
}

#[test]
fn encoder_reproduces_the_aws_doc_example() {
    // Cross-checks the test encoder against the published bytes, so the other tests, which
    // use the encoder, rest on the documentation.
    let data = [b'a'; 65536 + 1024];
    let encoded = encode_chunked(
        Some(&doc_signing_key()),
        hex32(DOC_SEED),
        &[&data[..65536], &data[65536..], b""],
        None,
    );
    assert_eq!(encoded, doc_body(DOC_CHUNK_SIGNATURES, None));
    let with_trailer = encode_chunked(
        Some(&doc_signing_key()),
        hex32(DOC_TRAILER_SEED),
        &[&data[..65536], &data[65536..], b""],
        Some(&[("x-amz-checksum-crc32c", "sOO8/Q==")]),
    );
    assert_eq!(
        with_trailer,
        doc_body(DOC_TRAILER_CHUNK_SIGNATURES, Some(DOC_TRAILER_SIGNATURE))
    );
}

#[test]
fn aws_doc_trailer_example_decodes_with_trailers() {
    let body = doc_body(DOC_TRAILER_CHUNK_SIGNATURES, Some(DOC_TRAILER_SIGNATURE));
    let mode = doc_mode(hex32(DOC_TRAILER_SEED), true)
        .with_decoded_length(Some(66560))
        .with_declared_trailers(vec!["x-amz-checksum-crc32c".to_string()]);
    let decoded = drain(one_frame(&body), mode);
    assert_eq!(decoded.error, None);
    assert_eq!(decoded.data.len(), 66560);
    assert_eq!(
        decoded.trailers.get("x-amz-checksum-crc32c").as_deref(),
        Some("sOO8/Q==")
    );
    assert_eq!(
        decoded.trailers.to_vec().len(),
        1,
        "the signature is not a trailer"
    );
}

#[test]
fn trailers_are_empty_until_a_clean_end() {
    let body = doc_body(DOC_TRAILER_CHUNK_SIGNATURES, Some(DOC_TRAILER_SIGNATURE));
    let mut tampered = body.clone();
    let at = body.len() - 10;
    tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
    let decoded = drain(
        one_frame(&tampered),
        doc_mode(hex32(DOC_TRAILER_SEED), true),
    );
    assert_eq!(decoded.error, Some(AuthError::SignatureDoesNotMatch));
    assert!(decoded.trailers.is_empty());
}

#[test]
fn every_split_point_decodes_identically() {
    let trailers: &[(&str, &str)] = &[("x-amz-checksum-crc32", "AAAAAA=="), ("x-amz-meta-x", "y")];
    for (trailer, trailer_list) in [(false, None), (true, Some(trailers))] {
        let (body, expected) = small_body(trailer_list);
        let mode =
            doc_mode(hex32(DOC_SEED), trailer).with_decoded_length(Some(expected.len() as u64));
        for cut in 0..=body.len() {
            let decoded = drain(frames_at(&body, &[cut]), mode.clone());
            assert_eq!(decoded.error, None, "split at {cut}");
            assert_eq!(decoded.data, expected, "split at {cut}");
            if trailer {
                assert_eq!(decoded.trailers.to_vec().len(), 2, "split at {cut}");
                assert_eq!(
                    decoded.trailers.get("x-amz-meta-x").as_deref(),
                    Some("y"),
                    "split at {cut}"
                );
            }
        }
        // Two cuts close together put a chunk header across three frames.
        for cut in 0..body.len() - 3 {
            let decoded = drain(frames_at(&body, &[cut, cut + 3]), mode.clone());
            assert_eq!(decoded.error, None, "split at {cut} and {}", cut + 3);
            assert_eq!(decoded.data, expected);
        }
        let decoded = drain(byte_frames(&body), mode.clone());
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.data, expected);
    }
}

#[test]
fn empty_frames_are_skipped() {
    let (body, expected) = small_body(None);
    let mut frames = vec![Ok(Bytes::new())];
    for frame in frames_at(&body, &[5, 5, 40]) {
        frames.push(frame);
        frames.push(Ok(Bytes::new()));
    }
    let decoded = drain(frames, doc_mode(hex32(DOC_SEED), false));
    assert_eq!(decoded.error, None);
    assert_eq!(decoded.data, expected);
}

#[test]
fn bad_signature_in_the_middle_is_an_error_before_the_end() {
    let (body, _) = small_body(None);
    // The second chunk header starts after the first chunk: find its signature and break it.
    let text = String::from_utf8_lossy(&body).into_owned();
    let second = text
        .match_indices("chunk-signature=")
        .nth(1)
        .expect("two chunks")
        .0;
    let mut tampered = body.clone();
    let at = second + "chunk-signature=".len();
    tampered[at] = if tampered[at] == b'a' { b'b' } else { b'a' };
    let decoded = drain(one_frame(&tampered), doc_mode(hex32(DOC_SEED), false));
    assert_eq!(decoded.error, Some(AuthError::SignatureDoesNotMatch));
    assert_eq!(
        decoded.data,
        small_chunks()[..2].concat(),
        "data up to the bad chunk was streamed, then the error"
    );
}

#[test]
fn tampered_chunk_data_is_a_signature_mismatch() {
    let (body, _) = small_body(None);
    let mut tampered = body.clone();
    let at = body
        .iter()
        .position(|&b| b == b'h')
        .expect("first chunk data");
    tampered[at] = b'H';
    let decoded = drain(one_frame(&tampered), doc_mode(hex32(DOC_SEED), false));
    assert_eq!(decoded.error, Some(AuthError::SignatureDoesNotMatch));
}

#[test]
fn wrong_seed_is_a_signature_mismatch() {
    let (body, _) = small_body(None);
    let decoded = drain(one_frame(&body), doc_mode([7; 32], false));
    assert_eq!(decoded.error, Some(AuthError::SignatureDoesNotMatch));
    assert!(decoded.data.len() <= small_chunks()[0].len());
}

#[test]
fn missing_chunk_signature_is_refused_in_signed_mode() {
    let body = b"5\r\nhello\r\n0\r\n\r\n";
    let decoded = drain(one_frame(body), doc_mode(hex32(DOC_SEED), false));
    assert_eq!(decoded.error, Some(AuthError::SignatureDoesNotMatch));
    assert!(decoded.data.is_empty());
}

#[test]
fn every_truncation_is_an_error() {
    for trailer in [false, true] {
        let trailers: &[(&str, &str)] = &[("x-amz-checksum-crc32", "AAAAAA==")];
        let (body, expected) = small_body(trailer.then_some(trailers));
        // Without a declared length, only the framing can tell a truncated body. The final
        // line ends may be missing (some SDKs leave them out), so cuts stop before them: the
        // blank line, and with trailers the end of the signed trailer-signature line too.
        let tolerated = if trailer { 4 } else { 2 };
        let mode = doc_mode(hex32(DOC_SEED), trailer);
        for cut in 0..body.len() - tolerated {
            let decoded = drain(frames_at(&body[..cut], &[]), mode.clone());
            let error = decoded.error.unwrap_or_else(|| {
                panic!(
                    "truncation at {cut} of {} (trailer {trailer}) ended cleanly",
                    body.len()
                )
            });
            assert!(
                matches!(
                    error,
                    AuthError::IncompleteBody(_) | AuthError::SignatureDoesNotMatch
                ),
                "truncation at {cut}: {error:?}"
            );
        }
        for cut in body.len() - tolerated..=body.len() {
            let decoded = drain(frames_at(&body[..cut], &[]), mode.clone());
            assert_eq!(decoded.error, None, "missing final line ends are tolerated");
            assert_eq!(decoded.data, expected);
        }
    }
}

#[test]
fn decoded_length_mismatch_is_incomplete_body() {
    let (body, expected) = small_body(None);
    let len = expected.len() as u64;
    for declared in [len + 1, len - 1, 0] {
        let mode = doc_mode(hex32(DOC_SEED), false).with_decoded_length(Some(declared));
        let decoded = drain(one_frame(&body), mode);
        assert!(
            matches!(decoded.error, Some(AuthError::IncompleteBody(_))),
            "declared {declared}: {:?}",
            decoded.error
        );
    }
}

#[test]
fn inner_stream_error_is_incomplete_body() {
    let (body, _) = small_body(None);
    let mut frames = frames_at(&body[..40], &[]);
    frames.push(Err("connection reset".to_string()));
    let decoded = drain(frames, doc_mode(hex32(DOC_SEED), false));
    match decoded.error {
        Some(AuthError::IncompleteBody(message)) => assert!(message.contains("connection reset")),
        other => panic!("expected IncompleteBody, got {other:?}"),
    }
}

#[test]
fn chunk_longer_than_declared_is_incomplete_body() {
    let body = b"3\r\nhello\r\n0\r\nx:y\r\n\r\n";
    let decoded = drain(one_frame(body), ChunkedMode::unsigned_trailer());
    assert!(matches!(decoded.error, Some(AuthError::IncompleteBody(_))));
    assert_eq!(decoded.data, b"hel");
}

#[test]
fn data_after_the_final_chunk_is_refused() {
    let (mut body, _) = small_body(None);
    body.extend_from_slice(b"5\r\nextra\r\n");
    let decoded = drain(one_frame(&body), doc_mode(hex32(DOC_SEED), false));
    assert!(matches!(decoded.error, Some(AuthError::IncompleteBody(_))));
}

#[test]
fn overlong_chunk_header_is_refused() {
    let mut body = b"5;".to_vec();
    body.extend(std::iter::repeat_n(b'x', 10_000));
    let decoded = drain(byte_frames(&body), ChunkedMode::unsigned_trailer());
    assert!(matches!(decoded.error, Some(AuthError::IncompleteBody(_))));
    let decoded = drain(
        one_frame(b"fffffffffffffffff\r\n"),
        ChunkedMode::unsigned_trailer(),
    );
    assert!(matches!(decoded.error, Some(AuthError::IncompleteBody(_))));
    let decoded = drain(one_frame(b"zz\r\n"), ChunkedMode::unsigned_trailer());
    assert!(matches!(decoded.error, Some(AuthError::IncompleteBody(_))));
}

#[test]
fn oversized_trailer_section_is_refused() {
    let mut body = b"0\r\n".to_vec();
    for i in 0..2000 {
        body.extend_from_slice(format!("x-amz-meta-{i}:value\r\n").as_bytes());
    }
    body.extend_from_slice(b"\r\n");
    let decoded = drain(one_frame(&body), ChunkedMode::unsigned_trailer());
    assert!(matches!(decoded.error, Some(AuthError::IncompleteBody(_))));
}

#[test]
fn unsigned_trailer_body_decodes_and_parses_trailers() {
    let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:  NhCmhg==  \r\nX-Amz-Meta-Note:a:b\r\n\r\n";
    let mode = ChunkedMode::unsigned_trailer()
        .with_decoded_length(Some(11))
        .with_declared_trailers(vec!["x-amz-checksum-crc32".to_string()]);
    for frames in [one_frame(body), byte_frames(body)] {
        let decoded = drain(frames, mode.clone());
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.data, b"hello world");
        assert_eq!(
            decoded.trailers.to_vec(),
            vec![
                ("x-amz-checksum-crc32".to_string(), "NhCmhg==".to_string()),
                ("x-amz-meta-note".to_string(), "a:b".to_string()),
            ]
        );
    }
}

#[test]
fn sdk_variations_in_trailer_framing_are_accepted() {
    let expected = Some("NhCmhg==");
    for body in [
        // A blank line between the final chunk and the trailers.
        &b"5\r\nhello\r\n0\r\n\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"[..],
        // No blank line at the end, or no line end at all.
        b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n",
        b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==",
    ] {
        let decoded = drain(one_frame(body), ChunkedMode::unsigned_trailer());
        let shown = String::from_utf8_lossy(body);
        assert_eq!(decoded.error, None, "{shown}");
        assert_eq!(decoded.data, b"hello", "{shown}");
        assert_eq!(
            decoded.trailers.get("x-amz-checksum-crc32").as_deref(),
            expected,
            "{shown}"
        );
    }
    // Bare LF line ends everywhere, including after chunk data.
    let lf_only = b"5\nhello\n0\nx-amz-checksum-crc32:NhCmhg==\n\n";
    let decoded = drain(one_frame(lf_only), ChunkedMode::unsigned_trailer());
    assert_eq!(decoded.error, None);
    assert_eq!(
        decoded.trailers.get("x-amz-checksum-crc32").as_deref(),
        expected
    );
}

#[test]
fn missing_declared_trailer_is_incomplete_body() {
    let body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n";
    let mode = ChunkedMode::unsigned_trailer()
        .with_declared_trailers(vec!["x-amz-checksum-sha256".to_string()]);
    let decoded = drain(one_frame(body), mode);
    assert!(matches!(decoded.error, Some(AuthError::IncompleteBody(_))));
    assert!(decoded.trailers.is_empty());
}

#[test]
fn signed_trailer_needs_a_valid_trailer_signature() {
    let trailers: &[(&str, &str)] = &[("x-amz-checksum-crc32", "AAAAAA==")];
    let (body, _) = small_body(Some(trailers));
    let mode = doc_mode(hex32(DOC_SEED), true);

    // A changed trailer value no longer matches the trailer signature. (Latin-1 keeps the
    // binary chunk data one char per byte, so string offsets are byte offsets.)
    let text: String = body.iter().map(|&b| char::from(b)).collect();
    let latin1 = |s: &str| -> Vec<u8> { s.chars().map(|c| c as u8).collect() };
    let changed = text.replace("AAAAAA==", "BBBBBB==");
    let decoded = drain(one_frame(&latin1(&changed)), mode.clone());
    assert_eq!(decoded.error, Some(AuthError::SignatureDoesNotMatch));

    // Without the signature line the body is incomplete.
    let start = text
        .find("x-amz-trailer-signature")
        .expect("signed trailer");
    let unsigned = format!("{}\r\n", &text[..start]);
    let decoded = drain(one_frame(&latin1(&unsigned)), mode.clone());
    assert!(matches!(decoded.error, Some(AuthError::IncompleteBody(_))));

    // A trailer after the signature is refused.
    let end = text.len() - 2;
    let appended = format!("{}x-amz-meta-late:1\r\n\r\n", &text[..end]);
    let decoded = drain(one_frame(&latin1(&appended)), mode);
    assert!(matches!(decoded.error, Some(AuthError::IncompleteBody(_))));
}

#[test]
fn debug_output_hides_the_signing_key() {
    let shown = format!("{:?}", doc_mode(hex32(DOC_SEED), true));
    assert!(!shown.contains(DOC_SEED));
    assert!(shown.contains("signed: true"));
}
