// A TypeScript CommonJS app ("module": "nodenext", a .cts file): typechecked against the
// published .d.ts files; the axios instance comes from axios' CommonJS declarations.
import axios = require('axios');
import gotModule = require('got');
import { FileTokenSource, isTokenSourceError } from '@podtoken/core';
import { withTokenSource as withAxios } from '@podtoken/axios';
import { withTokenSource as withGot } from '@podtoken/got';
import { withTokenSource as withFetch } from '@podtoken/fetch';
import { loadInCluster } from '@podtoken/kubernetes';

const source = new FileTokenSource({ audience: 'https://api.example' });
const api = withAxios(axios.create({ baseURL: 'https://api.example' }), source, { origins: ['https://api.example'] });
const client = withGot(gotModule.default, source);
const fetchWithToken: typeof fetch = withFetch(fetch, source);
const kubeConfig = loadInCluster();
const status: Promise<number> = api.get('/x').then((response) => response.status);
const failed = (error: unknown): string | undefined => (isTokenSourceError(error) ? error.code : undefined);
export = { client, fetchWithToken, kubeConfig, status, failed };
