// sspr WebAuthn page script (flows/webauthn). Served as a file: the pages
// that use it carry no inline script and no text of ours, so a CSP of
// "script-src 'self'" suffices and the pages stay translatable.
//
// The page provides:
//   <script type="application/json" id="webauthn-options">…options…</script>
//   <form id="webauthn-form" data-ceremony="get|create">
//     <input type="hidden" name="assertion|attestation"> … </form>
//   optionally #webauthn-unsupported and #webauthn-failed (hidden).
// On submit, the script runs navigator.credentials.get (or create) with
// the options, writes JSON.stringify(credential.toJSON()) into the hidden
// field and submits the form.
(function () {
  'use strict';

  var form = document.getElementById('webauthn-form');
  var holder = document.getElementById('webauthn-options');
  if (!form || !holder) {
    return;
  }
  var create = form.getAttribute('data-ceremony') === 'create';
  var field = form.querySelector('input[name="' + (create ? 'attestation' : 'assertion') + '"]');
  var unsupported = document.getElementById('webauthn-unsupported');
  var failed = document.getElementById('webauthn-failed');

  function show(el, on) {
    if (el) {
      el.hidden = !on;
    }
  }

  function setDisabled(on) {
    var buttons = form.querySelectorAll('button, input[type="submit"]');
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].disabled = on;
    }
  }

  var options = null;
  try {
    options = JSON.parse(holder.textContent);
    if (options && options.publicKey) {
      options = options.publicKey;
    }
  } catch (e) {
    options = null;
  }

  if (!field || !options || typeof options.challenge !== 'string' ||
      !window.PublicKeyCredential || !navigator.credentials ||
      !window.isSecureContext) {
    show(unsupported, true);
    setDisabled(true);
    return;
  }

  // base64url <-> ArrayBuffer, for browsers without parse*FromJSON/toJSON.
  function toBuf(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) {
      s += '=';
    }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }

  function toB64(buf) {
    var bytes = new Uint8Array(buf);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) {
      bin += String.fromCharCode(bytes[i]);
    }
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function copy(o) {
    return JSON.parse(JSON.stringify(o));
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      var c = copy(d);
      c.id = toBuf(d.id);
      return c;
    });
  }

  function parseRequest(o) {
    if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function') {
      return PublicKeyCredential.parseRequestOptionsFromJSON(o);
    }
    var p = copy(o);
    p.challenge = toBuf(o.challenge);
    if (o.allowCredentials) {
      p.allowCredentials = descriptors(o.allowCredentials);
    }
    return p;
  }

  function parseCreation(o) {
    if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function') {
      return PublicKeyCredential.parseCreationOptionsFromJSON(o);
    }
    var p = copy(o);
    p.challenge = toBuf(o.challenge);
    p.user.id = toBuf(o.user.id);
    if (o.excludeCredentials) {
      p.excludeCredentials = descriptors(o.excludeCredentials);
    }
    return p;
  }

  function credentialJSON(cred) {
    if (typeof cred.toJSON === 'function') {
      return cred.toJSON();
    }
    var r = cred.response;
    var out = {
      id: cred.id,
      rawId: toB64(cred.rawId),
      type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: {clientDataJSON: toB64(r.clientDataJSON)}
    };
    if (cred.authenticatorAttachment) {
      out.authenticatorAttachment = cred.authenticatorAttachment;
    }
    if (r.attestationObject) {
      out.response.attestationObject = toB64(r.attestationObject);
      if (r.getTransports) {
        out.response.transports = r.getTransports();
      }
      if (r.getAuthenticatorData) {
        out.response.authenticatorData = toB64(r.getAuthenticatorData());
      }
    } else {
      out.response.authenticatorData = toB64(r.authenticatorData);
      out.response.signature = toB64(r.signature);
      if (r.userHandle) {
        out.response.userHandle = toB64(r.userHandle);
      }
    }
    return out;
  }

  function ceremony() {
    if (create) {
      return navigator.credentials.create({publicKey: parseCreation(options)});
    }
    return navigator.credentials.get({publicKey: parseRequest(options)});
  }

  var busy = false;
  form.addEventListener('submit', function (ev) {
    if (field.value) {
      return; // the response is in: let the form go
    }
    ev.preventDefault();
    if (busy) {
      return;
    }
    busy = true;
    setDisabled(true);
    show(failed, false);
    Promise.resolve().then(ceremony).then(function (cred) {
      if (!cred) {
        throw new Error('no credential');
      }
      field.value = JSON.stringify(credentialJSON(cred));
      HTMLFormElement.prototype.submit.call(form);
    }).catch(function () {
      // Cancelled, timed out, or no matching authenticator: let the user
      // try again or pick another method.
      field.value = '';
      busy = false;
      setDisabled(false);
      show(failed, true);
    });
  });
}());
