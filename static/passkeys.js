// Passkeys (WebAuthn) for Portcullis: the only script, and only where WebAuthn needs one.
// Every page works without it; the passkey buttons stay hidden then.
(() => {
  "use strict";
  const supported = Boolean(window.PublicKeyCredential && navigator.credentials);

  const encode = (buffer) => {
    const bytes = new Uint8Array(buffer);
    let text = "";
    for (const byte of bytes) text += String.fromCharCode(byte);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  const decode = (text) => {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer;
  };

  const creationOptions = (options) => {
    const key = options.publicKey;
    key.challenge = decode(key.challenge);
    key.user.id = decode(key.user.id);
    (key.excludeCredentials || []).forEach((credential) => { credential.id = decode(credential.id); });
    return { publicKey: key };
  };
  const requestOptions = (options) => {
    const key = options.publicKey;
    key.challenge = decode(key.challenge);
    (key.allowCredentials || []).forEach((credential) => { credential.id = decode(credential.id); });
    return { publicKey: key };
  };
  const newCredential = (credential) => ({
    id: credential.id,
    rawId: encode(credential.rawId),
    type: credential.type,
    response: {
      attestationObject: encode(credential.response.attestationObject),
      clientDataJSON: encode(credential.response.clientDataJSON),
    },
    extensions: credential.getClientExtensionResults(),
  });
  const assertion = (credential) => ({
    id: credential.id,
    rawId: encode(credential.rawId),
    type: credential.type,
    response: {
      authenticatorData: encode(credential.response.authenticatorData),
      clientDataJSON: encode(credential.response.clientDataJSON),
      signature: encode(credential.response.signature),
      userHandle: credential.response.userHandle ? encode(credential.response.userHandle) : null,
    },
    extensions: credential.getClientExtensionResults(),
  });

  const post = async (url, body) => {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      const failure = new Error(answer.message || `The server answered ${response.status}.`);
      failure.code = answer.error;
      throw failure;
    }
    return answer;
  };
  const explain = (error) => {
    if (error && error.name === "NotAllowedError") return "The passkey request was cancelled or timed out. Try again.";
    if (error && error.name === "InvalidStateError") return "This passkey is registered already.";
    return (error && error.message) || "Something went wrong. Try again.";
  };
  const show = (element, text) => {
    if (!element) return;
    element.textContent = text;
    element.hidden = false;
    element.focus && element.focus();
  };

  // A first second factor comes with recovery codes: shown once, here, with a download.
  const showRecoveryCodes = (replaced, codes) => {
    const element = (tag, text, attributes = {}) => {
      const node = document.createElement(tag);
      if (text) node.textContent = text;
      Object.entries(attributes).forEach(([key, value]) => node.setAttribute(key, value));
      return node;
    };
    const section = element("section", "", { id: "new-recovery-codes", class: "notice", tabindex: "-1" });
    section.append(element("h3", "Your passkey is added. Now save your recovery codes."));
    section.append(element("p", "If you lose your passkeys, each of these codes signs you in once instead. "
      + "Keep them somewhere safe now: they are not shown again."));
    const list = element("ol", "", { class: "codes", id: "recovery-codes" });
    codes.forEach((code) => { const item = element("li"); item.append(element("code", code)); list.append(item); });
    section.append(list);
    const text = `Recovery codes for ${location.host}\nEach code signs you in once when you cannot use your passkeys.\n\n${codes.join("\n")}\n`;
    const download = element("p");
    download.append(element("a", "Download as text", {
      class: "button button--quiet", download: "portcullis-recovery-codes.txt",
      href: `data:text/plain;charset=utf-8,${encodeURIComponent(text)}`,
    }));
    const done = element("p");
    done.append(element("a", "I have saved them", { class: "button", href: "/account/security" }));
    section.append(download, done);
    replaced.replaceWith(section);
    section.focus();
  };

  // Account → Security: add a passkey.
  const register = document.querySelector("[data-passkey-register]");
  if (register && supported) {
    register.hidden = false;
    register.addEventListener("submit", async (event) => {
      event.preventDefault();
      const error = register.querySelector("[data-passkey-error]");
      error.hidden = true;
      const name = register.querySelector("[name=name]").value.trim();
      if (!name) return show(error, "Give the passkey a name, such as “Laptop” or “YubiKey”.");
      try {
        const csrf = register.dataset.csrf;
        const { token, options } = await post("/account/security/passkeys/options", { csrf_token: csrf });
        const credential = await navigator.credentials.create(creationOptions(options));
        const added = await post("/account/security/passkeys", {
          csrf_token: csrf, token, name, credential: newCredential(credential),
        });
        if (added.recovery_codes) showRecoveryCodes(register, added.recovery_codes);
        else window.location.assign("/account/security");
      } catch (failure) {
        // Adding a passkey needs a recent password: confirm it, then come back here.
        if (failure.code === "confirm_identity") {
          window.location.assign("/account/security/confirm?next=%2Faccount%2Fsecurity");
          return;
        }
        show(error, explain(failure));
      }
    });
  }

  // Sign-in without a password: the button, and the browser's autofill on the username field.
  const signIn = document.querySelector("[data-passkey-sign-in]");
  if (signIn && supported) {
    signIn.hidden = false;
    const error = document.querySelector("[data-passkey-sign-in-error]");
    let quiet = null;
    const run = async (mediation) => {
      const { token, options } = await post("/login/passkey/options", { csrf_token: signIn.dataset.csrf });
      const request = requestOptions(options);
      if (mediation) {
        quiet = new AbortController();
        request.mediation = mediation;
        request.signal = quiet.signal;
      }
      const credential = await navigator.credentials.get(request);
      const { redirect } = await post("/login/passkey", {
        csrf_token: signIn.dataset.csrf, token, credential: assertion(credential), next: signIn.dataset.next || "",
      });
      window.location.assign(redirect);
    };
    signIn.querySelector("button").addEventListener("click", async () => {
      if (quiet) quiet.abort();
      try { await run(null); } catch (failure) { show(error, explain(failure)); }
    });
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then((available) => {
        if (available) run("conditional").catch(() => {});
      });
    }
  }

  // The second step of a sign-in, with a passkey.
  const secondStep = document.querySelector("[data-passkey-second-step]");
  if (secondStep && supported) {
    secondStep.hidden = false;
    const error = document.querySelector("[data-passkey-second-step-error]");
    secondStep.querySelector("button").addEventListener("click", async () => {
      try {
        const csrf = secondStep.dataset.csrf;
        const { token, options } = await post("/login/second-step/passkey/options", { csrf_token: csrf });
        const credential = await navigator.credentials.get(requestOptions(options));
        const { redirect } = await post("/login/second-step/passkey", { csrf_token: csrf, token, credential: assertion(credential) });
        window.location.assign(redirect);
      } catch (failure) {
        show(error, explain(failure));
      }
    });
  }
})();
