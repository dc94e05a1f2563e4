/**
 * How the broker asks a vendor for a release statement (§6) when it takes a chain back for a refund.
 * Answers the parsed JSON body, or throws when the vendor cannot be reached or does not answer 200.
 */
export type ReleaseClient = (releaseUrl: string, body: { holder: unknown }) => Promise<unknown>;

export function httpReleaseClient(timeoutMs: number): ReleaseClient {
  return async (releaseUrl, body) => {
    const response = await fetch(releaseUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`release URL answered ${response.status}: ${text.slice(0, 200)}`);
    if (text.length > 64 * 1024) throw new Error('release answer too large');
    return JSON.parse(text) as unknown;
  };
}
