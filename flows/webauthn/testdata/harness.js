// Runs static/webauthn.js against a minimal fake page and WebAuthn API in
// Node, for TestScriptInNode. Input (environment): SCRIPT (path), MODE
// ("native", "fallback", "cancel" or "unsupported"), CEREMONY ("get" or
// "create"), OPTIONS (the JSON in #webauthn-options) and RESPONSE (the
// credential's toJSON() result). Output (stdout): a JSON report.
'use strict';

const fs = require('fs');
const vm = require('vm');

const mode = process.env.MODE;
const ceremony = process.env.CEREMONY;
const response = JSON.parse(process.env.RESPONSE || '{}');

function toBuf(s) {
  return new Uint8Array(Buffer.from(s, 'base64url')).buffer;
}
function toB64(buf) {
  return Buffer.from(new Uint8Array(buf)).toString('base64url');
}

const field = {name: ceremony === 'create' ? 'attestation' : 'assertion', value: ''};
const button = {disabled: false};
let listener = null;
let submitted = 0;
const form = {
  getAttribute: (n) => (n === 'data-ceremony' ? ceremony : null),
  querySelector: (sel) => (sel === 'input[name="' + field.name + '"]' ? field : null),
  querySelectorAll: () => [button],
  addEventListener: (type, fn) => { if (type === 'submit') listener = fn; },
};
const elements = {
  'webauthn-form': form,
  'webauthn-options': {textContent: process.env.OPTIONS},
  'webauthn-unsupported': {hidden: true},
  'webauthn-failed': {hidden: true},
};

class HTMLFormElement {
  submit() { if (this === form) submitted++; }
}

let seen = null; // the publicKey options the API got
function credential() {
  if (mode === 'native') {
    return {toJSON: () => response};
  }
  const r = response.response;
  const out = {
    id: response.id,
    rawId: toBuf(response.rawId),
    type: response.type,
    authenticatorAttachment: response.authenticatorAttachment,
    getClientExtensionResults: () => ({}),
    response: {clientDataJSON: toBuf(r.clientDataJSON)},
  };
  if (r.attestationObject) {
    out.response.attestationObject = toBuf(r.attestationObject);
    out.response.getTransports = () => r.transports;
    out.response.getAuthenticatorData = () => toBuf(r.authenticatorData);
  } else {
    out.response.authenticatorData = toBuf(r.authenticatorData);
    out.response.signature = toBuf(r.signature);
    out.response.userHandle = r.userHandle ? toBuf(r.userHandle) : null;
  }
  return out;
}
function call(opts) {
  seen = opts.publicKey;
  if (mode === 'cancel') {
    return Promise.reject(new Error('NotAllowedError'));
  }
  return Promise.resolve(credential());
}

// Native parse*FromJSON decode what the script must decode in fallback.
function parse(o, lists) {
  const p = JSON.parse(JSON.stringify(o));
  p.challenge = toBuf(o.challenge);
  if (p.user) p.user.id = toBuf(o.user.id);
  for (const l of lists) {
    if (p[l]) p[l] = p[l].map((d) => Object.assign({}, d, {id: toBuf(d.id)}));
  }
  p.nativeParsed = true;
  return p;
}
function PublicKeyCredential() {}
if (mode === 'native') {
  PublicKeyCredential.parseRequestOptionsFromJSON = (o) => parse(o, ['allowCredentials']);
  PublicKeyCredential.parseCreationOptionsFromJSON = (o) => parse(o, ['excludeCredentials']);
}

const sandbox = {
  document: {getElementById: (id) => elements[id] || null},
  navigator: {credentials: {get: call, create: call}},
  HTMLFormElement,
  atob,
  btoa,
  isSecureContext: true,
};
if (mode !== 'unsupported') {
  sandbox.PublicKeyCredential = PublicKeyCredential;
}
sandbox.window = sandbox;
vm.runInNewContext(fs.readFileSync(process.env.SCRIPT, 'utf8'), sandbox);

let prevented = false;
if (listener) {
  listener({preventDefault: () => { prevented = true; }});
}
setTimeout(() => {
  const ids = [];
  for (const l of ['allowCredentials', 'excludeCredentials']) {
    for (const d of (seen && seen[l]) || []) ids.push(toB64(d.id));
  }
  process.stdout.write(JSON.stringify({
    listener: listener !== null,
    prevented,
    submitted,
    field: field.value,
    disabled: button.disabled,
    unsupportedShown: !elements['webauthn-unsupported'].hidden,
    failedShown: !elements['webauthn-failed'].hidden,
    challenge: seen ? toB64(seen.challenge) : '',
    userID: seen && seen.user ? toB64(seen.user.id) : '',
    credentialIDs: ids,
    nativeParsed: Boolean(seen && seen.nativeParsed),
  }));
}, 50);
