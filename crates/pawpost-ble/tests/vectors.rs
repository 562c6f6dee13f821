//! The committed fragment vectors (`test-vectors/ble-fragments-v1.json`), which the web
//! app's relay (`web/js/ble-frames.js`) checks too: both sides cut frames into the same
//! bytes and judge damaged streams alike.

use pawpost_ble::{BleError, Fragmenter, Reassembler, MAX_FRAME_LEN};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../test-vectors/ble-fragments-v1.json"
    );
    let text = std::fs::read_to_string(path).expect("the vectors are committed");
    serde_json::from_str(&text).expect("the vectors are JSON")
}

fn bytes(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().expect("a hex string")).expect("valid hex")
}

fn num<T: TryFrom<u64>>(value: &Value) -> T {
    T::try_from(value.as_u64().expect("a number")).unwrap_or_else(|_| panic!("{value} in range"))
}

/// The variant's name, as the vectors spell it.
fn kind(error: &BleError) -> String {
    let debug = format!("{error:?}");
    debug
        .split([' ', '{'])
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_fragmenter_makes_exactly_the_committed_fragments_and_the_reassembler_undoes_them() {
    let vectors = vectors();
    assert_eq!(num::<usize>(&vectors["max_frame_len"]), MAX_FRAME_LEN);
    let cases = vectors["fragmentation"].as_array().unwrap();
    assert!(cases.len() >= 6);
    for case in cases {
        let why = case["description"].as_str().unwrap();
        let mtu: u16 = num(&case["mtu"]);
        let seq: u16 = num(&case["seq"]);
        let frame = bytes(&case["frame"]);
        assert_eq!(
            format!("{:08x}", pawpost_ble::frame_crc(seq, &frame)),
            case["crc"].as_str().unwrap(),
            "{why}"
        );
        let expected: Vec<Vec<u8>> = case["fragments"]
            .as_array()
            .unwrap()
            .iter()
            .map(bytes)
            .collect();
        let made: Vec<Vec<u8>> = Fragmenter::with_first_seq(mtu, seq)
            .unwrap()
            .fragment(&frame)
            .unwrap()
            .collect();
        assert_eq!(made, expected, "{why}");

        let mut reassembler = Reassembler::new(mtu, MAX_FRAME_LEN).unwrap();
        let (last, rest) = expected.split_last().unwrap();
        for fragment in rest {
            assert_eq!(reassembler.push(fragment), Ok(None), "{why}");
        }
        let whole = reassembler
            .push(last)
            .unwrap()
            .expect("the last fragment ends the frame");
        assert_eq!(
            (whole.seq, whole.missed, whole.data),
            (seq, 0, &frame[..]),
            "{why}"
        );
    }
}

#[test]
fn the_reassembler_judges_each_committed_damaged_stream_as_the_vectors_say() {
    let vectors = vectors();
    let cases = vectors["reassembly"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let why = case["description"].as_str().unwrap();
        let mut reassembler = Reassembler::new(num(&case["mtu"]), MAX_FRAME_LEN).unwrap();
        for (n, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            let expect = &step["expect"];
            let got = reassembler.push(&bytes(&step["fragment"]));
            match got {
                Ok(Some(frame)) => {
                    assert_eq!(frame.data, &bytes(&expect["frame"])[..], "{why}, step {n}");
                    assert_eq!(frame.seq, num::<u16>(&expect["seq"]), "{why}, step {n}");
                    assert_eq!(
                        frame.missed,
                        num::<u16>(&expect["missed"]),
                        "{why}, step {n}"
                    );
                }
                Ok(None) => assert_eq!(expect["more"], Value::Bool(true), "{why}, step {n}"),
                Err(e) => assert_eq!(
                    Some(kind(&e).as_str()),
                    expect["error"].as_str(),
                    "{why}, step {n}: {e}"
                ),
            }
        }
    }
}
