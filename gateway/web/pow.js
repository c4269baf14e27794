// Solves the gateway's proof-of-work challenge (the ALTCHA scheme) off the main thread: the
// number in 0..=maxnumber whose SHA-256 of `salt` followed by it in decimal is `challenge`.
// Answers { number } (null when none is found, which a challenge of ours never gives).
'use strict';

const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');

self.onmessage = async (event) => {
  const { algorithm, challenge, maxnumber, salt } = event.data;
  const encoder = new TextEncoder();
  for (let number = 0; number <= maxnumber; number += 1) {
    const digest = await crypto.subtle.digest(algorithm, encoder.encode(salt + number));
    if (hex(digest) === challenge) {
      self.postMessage({ number });
      return;
    }
  }
  self.postMessage({ number: null });
};
