// The grpc benchmark's service: one unary method with JSON messages and hand-written
// serializers (no .proto, no codegen).
const serialize = (value) => Buffer.from(JSON.stringify(value));
const deserialize = (bytes) => JSON.parse(bytes.toString('utf8'));

export const ECHO = {
  echo: {
    path: '/podtoken.bench.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
  },
};
