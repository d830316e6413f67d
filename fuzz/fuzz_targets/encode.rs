//! Reply encoding: a redis::Value decoded from the input, written by encode::single,
//! encode::batch (plain and base64) and encode::resp2; JSON output must parse.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| restdis_fuzz::check_encode(data));
