// The twin's API on the same origin: uploads, image metadata and Step Functions (AWS JSON 1.0).

/** An error answered by the twin, with AWS's error code when there is one. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfterSeconds) {
    super(message || code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    // From Retry-After, when the twin is at its limit of open executions (503).
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

async function errorFrom(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // Not JSON: the status says enough.
  }
  const code = body.__type ?? response.headers.get('x-amzn-ErrorType') ?? undefined;
  return new ApiError(response.status, code, body.message ?? body.Message ?? response.statusText);
}

/** Calls one Step Functions operation, e.g. sfn('ListExecutions', {stateMachineArn}). */
export async function sfn(operation, request = {}) {
  const response = await fetch('/', {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-amz-json-1.0',
      'X-Amz-Target': `AWSStepFunctions.${operation}`,
    },
    body: JSON.stringify(request),
  });
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

let pipelineArn;

/** The ARN of the image pipeline's state machine (the first one listed), looked up once. */
export async function stateMachineArn() {
  if (!pipelineArn) {
    const { stateMachines } = await sfn('ListStateMachines', {});
    const pipeline = stateMachines.find((m) => m.name === 'imgflow-image-pipeline') ?? stateMachines[0];
    if (!pipeline) throw new ApiError(404, 'StateMachineDoesNotExist', 'The twin has no state machine');
    pipelineArn = pipeline.stateMachineArn;
  }
  return pipelineArn;
}

const definitions = new Map();

/** The parsed ASL definition of a state machine (cached: definitions rarely change). */
export async function definitionOf(arn) {
  if (!definitions.has(arn)) {
    const described = await sfn('DescribeStateMachine', { stateMachineArn: arn });
    definitions.set(arn, JSON.parse(described.definition));
  }
  return definitions.get(arn);
}

/** Every history event of an execution, oldest first, following the pages. */
export async function executionHistory(executionArn) {
  const events = [];
  let nextToken;
  do {
    const page = await sfn('GetExecutionHistory', { executionArn, maxResults: 1000, nextToken });
    events.push(...page.events);
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

/** The metadata item of one image (status PROCESSING while its execution runs). */
export function image(imageId) {
  return getJson(`/images/${encodeURIComponent(imageId)}`);
}

/** One page of images, newest first. */
export function images({ status, limit, nextToken } = {}) {
  const query = new URLSearchParams();
  if (status) query.set('status', status);
  if (limit) query.set('limit', String(limit));
  if (nextToken) query.set('nextToken', nextToken);
  const text = query.toString();
  return getJson(`/images${text ? `?${text}` : ''}`);
}

/**
 * Uploads one file with POST /upload. XMLHttpRequest rather than fetch: it reports upload
 * progress. `onProgress(fraction)` is called as bytes go out. Resolves to the 202 answer
 * ({imageId, key, statusUrl, executionArn}).
 */
export function upload(file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('POST', '/upload');
    request.responseType = 'json';
    request.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) onProgress?.(event.loaded / event.total);
    });
    request.addEventListener('load', () => {
      const body = request.response ?? {};
      if (request.status === 202 || request.status === 200) {
        onProgress?.(1);
        resolve(body);
      } else {
        const retryAfter = Number.parseInt(request.getResponseHeader('Retry-After') ?? '', 10);
        const message = body?.message ?? `HTTP ${request.status}`;
        reject(new ApiError(request.status, undefined, message, Number.isNaN(retryAfter) ? undefined : retryAfter));
      }
    });
    request.addEventListener('error', () => reject(new ApiError(0, 'NetworkError', 'The twin did not answer')));
    // A file the browser knows as an image goes as the raw body with its type; any other goes as
    // multipart form data, and the twin judges it by its bytes.
    if (file.type?.startsWith('image/')) {
      request.setRequestHeader('Content-Type', file.type);
      request.send(file);
    } else {
      const form = new FormData();
      form.append('file', file, file.name);
      request.send(form);
    }
  });
}
