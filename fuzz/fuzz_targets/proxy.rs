#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mamori_protocol::fuzzing::proxy(data));
