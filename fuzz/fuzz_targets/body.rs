//! The JSON body of `POST /`: body::parse_command.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| restdis_fuzz::check_body(data));
