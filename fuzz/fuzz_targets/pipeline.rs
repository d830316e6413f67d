//! The JSON body of `/pipeline` and `/multi-exec`: body::parse_batch.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| restdis_fuzz::check_pipeline(data));
