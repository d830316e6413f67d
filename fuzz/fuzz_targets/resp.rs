//! Redis replies in: protocol::resp's scanner and parser on arbitrary bytes, whole and split.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| restdis_fuzz::check_resp(data));
