// Image ids from execution inputs, as the steps derive them (steps/src/event.rs).

const UPLOADS_PREFIX = 'uploads/';

/** Decodes an S3 event key: form-URL-encoding, where `+` is a space. */
export function decodeEventKey(raw) {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}

function isUrlSafeId(id) {
  return id.length >= 1 && id.length <= 128 && /^[A-Za-z0-9_-]+$/.test(id);
}

/**
 * The ImageID of an object key: `uploads/{id}` with a URL-safe id is that id; any other key maps
 * to `k-` and the first 32 hex digits of its SHA-256 (null where the browser has no WebCrypto).
 */
export async function imageIdForKey(key) {
  if (key.startsWith(UPLOADS_PREFIX) && isUrlSafeId(key.slice(UPLOADS_PREFIX.length))) {
    return key.slice(UPLOADS_PREFIX.length);
  }
  if (!globalThis.crypto?.subtle) return null;
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(key));
  const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
  return `k-${hex.slice(0, 32)}`;
}

/** The ImageID an execution is about, from its input (the "Object Created" event), or null. */
export async function imageIdOfInput(inputText) {
  let input;
  try {
    input = JSON.parse(inputText);
  } catch {
    return null;
  }
  const rawKey = input?.detail?.object?.key;
  return typeof rawKey === 'string' ? imageIdForKey(decodeEventKey(rawKey)) : null;
}
