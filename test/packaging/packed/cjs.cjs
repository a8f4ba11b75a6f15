// A CommonJS app that installed the packed packages: require() of ESM (Node >= 20.19).
'use strict';
const modules = {
  core: require('@podtoken/core'),
  testing: require('@podtoken/testing'),
  axiosAdapter: require('@podtoken/axios'),
  gotAdapter: require('@podtoken/got'),
  fetchAdapter: require('@podtoken/fetch'),
  kubernetes: require('@podtoken/kubernetes'),
  axios: require('axios'),
  got: require('got').default,
  nodeFetch: require('node-fetch').default,
  undiciAdapter: require('@podtoken/undici'),
  undici: require('undici'),
  grpcAdapter: require('@podtoken/grpc'),
  grpc: require('@grpc/grpc-js'),
  otel: require('@podtoken/otel'),
};
import('./scenario.mjs')
  .then(({ scenario }) => scenario(modules))
  .then((statuses) => console.log(`CommonJS app: ${JSON.stringify(statuses)}`))
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
