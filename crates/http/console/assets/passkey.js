// The console's one script: the browser's passkey dialog (WebAuthn), which
// no HTML form can open. A form marked data-passkey="create" or "get"
// carries the server's options (data-options, as webauthn-rs writes them)
// and the messages to show (data-msg-*). On submit the script asks the
// browser for the credential, puts it, as JSON, in the form's hidden
// `credential` field and sends the form; the server checks it and answers
// with a page, as for any other form.
"use strict";

(function () {
  function fromB64url(s) {
    const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buf) {
    const bytes = new Uint8Array(buf);
    let bin = "";
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: fromB64url(c.id) });
    });
  }

  // The server's options with their binary fields as ArrayBuffers.
  function decode(options, mode) {
    const pk = Object.assign({}, options.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    if (mode === "create") {
      pk.user = Object.assign({}, pk.user, { id: fromB64url(pk.user.id) });
      pk.excludeCredentials = withIds(pk.excludeCredentials);
    } else {
      pk.allowCredentials = withIds(pk.allowCredentials);
    }
    return { publicKey: pk };
  }

  // The credential as webauthn-rs reads it (binary fields base64url).
  function encode(cred, mode) {
    const r = cred.response;
    const response =
      mode === "create"
        ? {
            attestationObject: toB64url(r.attestationObject),
            clientDataJSON: toB64url(r.clientDataJSON),
            transports: r.getTransports ? r.getTransports() : undefined,
          }
        : {
            authenticatorData: toB64url(r.authenticatorData),
            clientDataJSON: toB64url(r.clientDataJSON),
            signature: toB64url(r.signature),
            userHandle: r.userHandle ? toB64url(r.userHandle) : null,
          };
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: response,
      extensions: cred.getClientExtensionResults(),
    };
  }

  // The message for a refusal by the browser (the name of its DOMException).
  function message(form, error) {
    const d = form.dataset;
    switch (error && error.name) {
      case "NotAllowedError":
        return d.msgCancelled;
      case "SecurityError":
        return d.msgWrongHost;
      case "InvalidStateError":
        return d.msgExists;
      case "NotSupportedError":
        return d.msgUnsupported;
      default:
        return d.msgFailed;
    }
  }

  function start(form) {
    const status = form.querySelector(".passkey-status");
    const button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", function (event) {
      if (form.elements.credential.value) return;
      event.preventDefault();
      if (!window.PublicKeyCredential || !navigator.credentials) {
        status.textContent = form.dataset.msgUnsupported;
        return;
      }
      const mode = form.dataset.passkey;
      let options;
      try {
        options = decode(JSON.parse(form.dataset.options), mode);
      } catch (e) {
        status.textContent = form.dataset.msgFailed;
        return;
      }
      button.disabled = true;
      status.textContent = form.dataset.msgWaiting;
      const asked =
        mode === "create"
          ? navigator.credentials.create(options)
          : navigator.credentials.get(options);
      asked
        .then(function (cred) {
          form.elements.credential.value = JSON.stringify(encode(cred, mode));
          form.submit();
        })
        .catch(function (e) {
          button.disabled = false;
          status.textContent = message(form, e);
        });
    });
  }

  document.querySelectorAll("form[data-passkey]").forEach(start);
  // A page restored by the back button may keep an answer already sent:
  // clear it, so the next press asks the browser again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-passkey]").forEach(function (form) {
      form.elements.credential.value = "";
      const button = form.querySelector("button[type=submit]");
      if (button) button.disabled = false;
    });
  });
})();
