import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { withTokenSource } from '@podtoken/axios';
import { staticTokenSource } from '@podtoken/core';

const source = staticTokenSource('not-a-real-token');
const api = withTokenSource(axios.create({ baseURL: 'https://api.example' }), source, { origins: ['https://api.example'] });
const pending: Promise<AxiosResponse<{ id: number }>> = api.get<{ id: number }>('/items/1');
api.defaults.timeout = 5_000; // the instance keeps its own type
const same: AxiosInstance = withTokenSource(axios, source); // the default instance works too
// @ts-expect-error not an axios instance
withTokenSource({}, source);
void pending;
void same;
