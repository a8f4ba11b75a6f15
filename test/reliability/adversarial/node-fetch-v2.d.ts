// node-fetch 2 is installed under the alias node-fetch-v2 (node-fetch 3 holds the real name).
// The corpus calls it through @podtoken/fetch only, with a URL string and a plain init.
declare module 'node-fetch-v2' {
  interface NodeFetch2Response {
    readonly status: number;
    readonly headers: { get(name: string): string | null };
    text(): Promise<string>;
    arrayBuffer(): Promise<ArrayBuffer>;
  }
  const fetch: (input: string, init?: Record<string, unknown>) => Promise<NodeFetch2Response>;
  export default fetch;
}
