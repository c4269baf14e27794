// Solves the gateway's proof-of-work challenge (the ALTCHA scheme) off the main thread: the
// number in 0..=maxnumber whose SHA-256 of `salt` followed by it in decimal is `challenge`.
// Answers { number } (null when none is found, which a challenge of ours never gives).
//
// SHA-256 is computed here, synchronously, rather than with WebCrypto: `crypto.subtle.digest`
// costs a promise per number (about 9 µs each in Chromium), ten times the digest itself, and
// the difficulty an applicant can bear is set by how fast this loop runs (`examreg-bench --pow`
// measures it; docs/proof-of-work.md has the figures).
'use strict';

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const W = new Uint32Array(64);
const H = new Uint32Array(8);

/** The SHA-256 of `bytes[0..length]` into `H` (`bytes` has room for the padding). */
function sha256(bytes, length) {
  H.set([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const blocks = ((length + 8) >>> 6) + 1;
  bytes.fill(0, length, blocks * 64);
  bytes[length] = 0x80;
  const bits = length * 8;
  bytes[blocks * 64 - 4] = bits >>> 24;
  bytes[blocks * 64 - 3] = bits >>> 16;
  bytes[blocks * 64 - 2] = bits >>> 8;
  bytes[blocks * 64 - 1] = bits;
  for (let block = 0; block < blocks; block += 1) {
    const at = block * 64;
    for (let i = 0; i < 16; i += 1) {
      const j = at + i * 4;
      W[i] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
    }
    for (let i = 16; i < 64; i += 1) {
      const a = W[i - 15];
      const b = W[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
    }
    let a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
    for (let i = 0; i < 64; i += 1) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
  }
}

self.onmessage = (event) => {
  const { algorithm, challenge, maxnumber, salt } = event.data;
  if (algorithm !== 'SHA-256') {
    self.postMessage({ number: null });
    return;
  }
  const target = new Uint32Array(8);
  for (let i = 0; i < 8; i += 1) target[i] = parseInt(challenge.slice(i * 8, i * 8 + 8), 16);
  const prefix = new TextEncoder().encode(salt);
  // The salt, then the number's digits, then room for the padding.
  const bytes = new Uint8Array(prefix.length + 16 + 72);
  bytes.set(prefix);
  for (let number = 0; number <= maxnumber; number += 1) {
    const digits = String(number);
    let length = prefix.length;
    for (let i = 0; i < digits.length; i += 1) bytes[length++] = digits.charCodeAt(i);
    sha256(bytes, length);
    if (H[0] === target[0] && H[1] === target[1] && H[2] === target[2] && H[3] === target[3]
      && H[4] === target[4] && H[5] === target[5] && H[6] === target[6] && H[7] === target[7]) {
      self.postMessage({ number });
      return;
    }
  }
  self.postMessage({ number: null });
};
