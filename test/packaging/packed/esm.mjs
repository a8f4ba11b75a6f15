// An ESM app that installed the packed packages.
import axios from 'axios';
import got from 'got';
import nodeFetch from 'node-fetch';
import * as core from '@podtoken/core';
import * as testing from '@podtoken/testing';
import * as axiosAdapter from '@podtoken/axios';
import * as gotAdapter from '@podtoken/got';
import * as fetchAdapter from '@podtoken/fetch';
import * as kubernetes from '@podtoken/kubernetes';
import * as undiciAdapter from '@podtoken/undici';
import * as grpcAdapter from '@podtoken/grpc';
import * as otel from '@podtoken/otel';
import * as undici from 'undici';
import * as grpc from '@grpc/grpc-js';
import { scenario } from './scenario.mjs';

const statuses = await scenario({ core, testing, axiosAdapter, gotAdapter, fetchAdapter, kubernetes, axios, got, nodeFetch, undiciAdapter, undici, grpcAdapter, grpc, otel });
console.log(`ESM app: ${JSON.stringify(statuses)}`);
