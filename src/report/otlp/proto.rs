//! The OTLP trace request in protobuf's wire format, written by hand: the
//! few messages a trace export needs (`ExportTraceServiceRequest` down to
//! `Span`, `Event`, `KeyValue`, `Status`) with the field numbers of
//! opentelemetry-proto's `trace/v1/trace.proto`, `common/v1/common.proto`
//! and `resource/v1/resource.proto`. Receivers decode it with the official
//! generated code (the tests' receiver does), so a wrong number shows.

use super::spans::{Span, Value};

/// Wire types.
const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;

#[derive(Default)]
struct Buf(Vec<u8>);

impl Buf {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u64, wire: u64) {
        self.varint(field << 3 | wire);
    }

    fn bytes(&mut self, field: u64, b: &[u8]) {
        self.key(field, LEN);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, field: u64, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn fixed64(&mut self, field: u64, v: u64) {
        self.key(field, FIXED64);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn uint(&mut self, field: u64, v: u64) {
        if v != 0 {
            self.key(field, VARINT);
            self.varint(v);
        }
    }

    fn message(&mut self, field: u64, write: impl FnOnce(&mut Buf)) {
        let mut inner = Buf::default();
        write(&mut inner);
        self.bytes(field, &inner.0);
    }
}

/// `KeyValue { string key = 1; AnyValue value = 2; }`, `AnyValue` with
/// `string_value = 1`, `bool_value = 2`, `int_value = 3`.
fn key_value(b: &mut Buf, field: u64, key: &str, value: &Value) {
    b.message(field, |kv| {
        kv.string(1, key);
        kv.message(2, |any| match value {
            Value::Str(s) => any.bytes(1, s.as_bytes()),
            Value::Bool(v) => {
                any.key(2, VARINT);
                any.varint(u64::from(*v));
            }
            Value::Int(v) => {
                any.key(3, VARINT);
                // int64 is two's complement in a varint.
                any.varint(*v as u64);
            }
        });
    });
}

/// `Span` (trace.proto): `trace_id = 1`, `span_id = 2`, `parent_span_id = 4`,
/// `name = 5`, `kind = 6`, `start_time_unix_nano = 7`, `end_time_unix_nano = 8`,
/// `attributes = 9`, `events = 11`, `status = 15`.
fn span(b: &mut Buf, s: &Span, trace_id: &[u8; 16]) {
    b.message(2, |m| {
        m.bytes(1, trace_id);
        m.bytes(2, &s.id);
        if let Some(parent) = &s.parent {
            m.bytes(4, parent);
        }
        m.string(5, &s.name);
        // SPAN_KIND_INTERNAL = 1.
        m.uint(6, 1);
        m.fixed64(7, s.start);
        m.fixed64(8, s.end.max(s.start));
        for (k, v) in &s.attributes {
            key_value(m, 9, k, v);
        }
        // `Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }`
        for e in &s.events {
            m.message(11, |ev| {
                ev.fixed64(1, e.time);
                ev.string(2, &e.name);
                for (k, v) in &e.attributes {
                    key_value(ev, 3, k, v);
                }
            });
        }
        // `Status { string message = 2; StatusCode code = 3; }`: UNSET 0, OK 1, ERROR 2.
        m.message(15, |st| {
            if let Some(message) = &s.error {
                st.string(2, message);
                st.uint(3, 2);
            } else if s.ok {
                st.uint(3, 1);
            }
        });
    });
}

/// `ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }`,
/// `ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }`,
/// `Resource { repeated KeyValue attributes = 1; }`,
/// `ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }`,
/// `InstrumentationScope { string name = 1; string version = 2; }`.
pub fn export_request(resource: &[(String, Value)], trace_id: &[u8; 16], spans: &[Span]) -> Vec<u8> {
    let mut b = Buf::default();
    b.message(1, |rs| {
        rs.message(1, |r| {
            for (k, v) in resource {
                key_value(r, 1, k, v);
            }
        });
        rs.message(2, |ss| {
            ss.message(1, |scope| {
                scope.string(1, "capstan");
                scope.string(2, env!("CARGO_PKG_VERSION"));
            });
            for s in spans {
                span(ss, s, trace_id);
            }
        });
    });
    b.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_keys_follow_the_wire_format() {
        let mut b = Buf::default();
        b.varint(300);
        assert_eq!(b.0, [0xac, 0x02]);
        let mut b = Buf::default();
        b.string(5, "ab");
        assert_eq!(b.0, [5 << 3 | 2, 2, b'a', b'b']);
        let mut b = Buf::default();
        b.fixed64(7, 1);
        assert_eq!(b.0, [7 << 3 | 1, 1, 0, 0, 0, 0, 0, 0, 0]);
        let mut b = Buf::default();
        key_value(&mut b, 9, "n", &Value::Int(-1));
        // KeyValue{key="n", value=AnyValue{int_value=-1 (ten bytes)}}
        assert_eq!(&b.0[..5], [9 << 3 | 2, 16, 1 << 3 | 2, 1, b'n']);
        assert_eq!(b.0.len(), 2 + 3 + 2 + 1 + 10);
    }
}
