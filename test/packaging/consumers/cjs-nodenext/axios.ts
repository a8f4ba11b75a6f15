import axios = require('axios');
import podtokenAxios = require('@podtoken/axios');
import core = require('@podtoken/core');

// axios resolved with the `require` condition: its index.d.cts types, another AxiosInstance
// than the one an ESM declaration would name (the reason withTokenSource is structural).
const source = core.staticTokenSource('not-a-real-token');
const api = podtokenAxios.withTokenSource(axios.create({ baseURL: 'https://api.example' }), source, { origins: ['https://api.example'] });
const pending: Promise<axios.AxiosResponse<{ id: number }>> = api.get<{ id: number }>('/items/1');
api.defaults.timeout = 5_000; // the instance keeps its own type
const same: axios.AxiosInstance = podtokenAxios.withTokenSource(axios, source); // the default instance works too
// @ts-expect-error not an axios instance
podtokenAxios.withTokenSource({}, source);
void pending;
void same;
