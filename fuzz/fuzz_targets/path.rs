//! Request paths: route::classify, then path::parse_command (path segments, body, query).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| restdis_fuzz::check_path(data));
