// A TypeScript ESM app: typechecked against the published .d.ts files.
import axios from 'axios';
import got from 'got';
import nodeFetch from 'node-fetch';
import { FileTokenSource, isTokenSourceError, type Token } from '@podtoken/core';
import { withTokenSource as withAxios } from '@podtoken/axios';
import { withTokenSource as withGot } from '@podtoken/got';
import { withTokenSource as withFetch } from '@podtoken/fetch';
import { loadInCluster } from '@podtoken/kubernetes';
import { CoreV1Api } from '@kubernetes/client-node';

const source = new FileTokenSource({ audience: 'https://api.example' });
const api = withAxios(axios.create({ baseURL: 'https://api.example' }), source, { origins: ['https://api.example'] });
const client = withGot(got, source);
const fetchWithToken: typeof fetch = withFetch(fetch, source);
const nodeFetchWithToken: typeof nodeFetch = withFetch(nodeFetch, source);
const kubeConfig = loadInCluster();
const core: CoreV1Api = kubeConfig.makeApiClient(CoreV1Api);
const status: Promise<number> = api.get('/x').then((response) => response.status);
const token: Token | undefined = source.current;
const failed = (error: unknown): string | undefined => (isTokenSourceError(error) ? error.code : undefined);
export { client, fetchWithToken, nodeFetchWithToken, core, status, token, failed };
