// VERIFY.html: the checks of `scelle verify` (exports) and `scelle ledger verify --bundle`
// (ledger bundles), run in the browser on the folder the investigator picks. Same check
// ids, same order, same verdict (ok / partial / failed). Nothing leaves the page: files are
// read from the disk through the folder input, never sent anywhere.
//
// Cryptography comes from the browser (WebCrypto Ed25519, SHA-512) or from the inlined,
// unchanged libraries named in templates/vendor/README.md (tweetnacl for Ed25519 where
// WebCrypto lacks it; hash-wasm for streaming SHA-256 and BLAKE2b). This file only parses
// the export's formats, follows RFC 9162 to fold Merkle proofs and, given a witness policy,
// C2SP tlog-cosignature to check the witnesses' cosignatures of the checkpoint.
"use strict";

const DATA = JSON.parse(document.getElementById("scelle-data").textContent);
const CHUNK = 8 * 1024 * 1024; // bytes read at a time: memory stays flat whatever the size
// ignoreBOM: a byte-order mark stays in the text, as Python's strict decoding keeps it.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const enc = new TextEncoder();

// ---------------------------------------------------------------- small helpers
class CheckFailure extends Error {
  constructor(fr, en) {
    super(en);
    this.fr = fr;
    this.en = en;
  }
}
const fail = (fr, en) => {
  throw new CheckFailure(fr, en || fr);
};
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const b64 = (bytes) => btoa(String.fromCharCode(...bytes));
// Python's base64.b64decode(text, validate=True) accepts exactly these.
const isB64 = (text) => typeof text === "string" && /^[A-Za-z0-9+/]*={0,2}$/.test(text) && text.length % 4 === 0;
function unb64(text, what) {
  if (!isB64(text)) fail(`${what} n'est pas en base64`, `${what} is not base64`);
  const bin = atob(text);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
// Python's idea of whitespace and of line ends (str.split(), str.strip(), splitlines()):
// the files are read exactly as `scelle verify` reads them, or the verdicts could differ.
const PY_SPACE = "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const pyWords = (text) => text.split(new RegExp(`[${PY_SPACE}]+`)).filter((w) => w !== "");
const pyStrip = (text) => text.replace(new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, "g"), "");
function pyLines(text) {
  const lines = text.split(/\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/);
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  return lines;
}
const fromHex = (text) => Uint8Array.from(text.match(/../g) || [], (h) => parseInt(h, 16));

async function sha256(bytes) {
  return fromHex(await hashwasm.sha256(bytes));
}
async function sha512(bytes) {
  if (globalThis.crypto && crypto.subtle) {
    return new Uint8Array(await crypto.subtle.digest("SHA-512", bytes));
  }
  return nacl.hash(bytes);
}

// ---------------------------------------------------------------- Ed25519
// RFC 8032 §7.1 test 1: proves each implementation works before it is trusted.
const RFC8032 = {
  key: fromHex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"),
  sig: fromHex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
  ),
};
let ed25519Impl = null; // "webcrypto" or "tweetnacl"

async function chooseEd25519() {
  try {
    const key = await crypto.subtle.importKey("raw", RFC8032.key, { name: "Ed25519" }, false, [
      "verify",
    ]);
    if (await crypto.subtle.verify({ name: "Ed25519" }, key, RFC8032.sig, new Uint8Array())) {
      return "webcrypto";
    }
  } catch (e) {
    // no Ed25519 in this browser's WebCrypto: the vendored implementation takes over
  }
  if (!nacl.sign.detached.verify(new Uint8Array(), RFC8032.sig, RFC8032.key)) {
    throw new Error("tweetnacl self-test failed");
  }
  return "tweetnacl";
}

async function ed25519Verify(publicKey, signature, message) {
  if (signature.length !== 64) return false;
  if (ed25519Impl === "webcrypto") {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, [
      "verify",
    ]);
    return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  }
  // RFC 8032 §5.1.7 asks for S < L; tweetnacl does not check it (OpenSSL and WebCrypto
  // do): without this, S + L would pass here and fail everywhere else.
  const s = BigInt(`0x${hex(signature.subarray(32).slice().reverse())}`);
  if (s >= ED25519_L) return false;
  return nacl.sign.detached.verify(message, signature, publicKey);
}
const ED25519_L = 2n ** 252n + 27742317777372353535851937790883648493n;

// ---------------------------------------------------------------- the folder
class Folder {
  constructor(files) {
    this.files = files; // Map: path relative to the export -> File
  }
  has(name) {
    return this.files.has(name);
  }
  file(name) {
    const f = this.files.get(name);
    if (!f) fail(`${name} est absent`, `${name} is missing`);
    return f;
  }
  async bytes(name) {
    return new Uint8Array(await this.file(name).arrayBuffer());
  }
  async text(name) {
    try {
      return utf8.decode(await this.bytes(name));
    } catch (e) {
      if (e instanceof CheckFailure) throw e;
      fail(`${name} n'est pas du texte UTF-8`, `${name} is not UTF-8 text`);
    }
  }
}

// The picked folder is the export (or bundle); picking the folder above it works too.
function folderOf(fileList) {
  const all = new Map();
  for (const f of fileList) all.set(f.webkitRelativePath || f.name, f);
  const strip = (prefix) => {
    const out = new Map();
    for (const [p, f] of all) if (p.startsWith(prefix)) out.set(p.slice(prefix.length), f);
    return out;
  };
  const top = [...all.keys()][0]?.split("/")[0] ?? "";
  const here = strip(top + "/");
  if (here.has("manifest.json") || here.has("proof.json") || here.size === 0) {
    return { folder: new Folder(here), name: top };
  }
  const inside = new Set();
  for (const p of here.keys()) {
    const parts = p.split("/");
    if (parts.length === 2 && (parts[1] === "manifest.json" || parts[1] === "proof.json")) {
      inside.add(parts[0]);
    }
  }
  if (inside.size === 1) {
    const name = [...inside][0];
    const beside = [...here.keys()].filter((p) => !p.startsWith(`${name}/`));
    if (!beside.length) {
      return { folder: new Folder(strip(`${top}/${name}/`)), name: `${top}/${name}` };
    }
  }
  return { folder: new Folder(here), name: top, inside: [...inside].sort() };
}

// ---------------------------------------------------------------- formats
// RFC 8785 canonical JSON: ECMAScript's JSON.stringify with sorted keys is the RFC's own
// reference serialisation; a file is canonical when that gives back its exact bytes.
function canonical(value) {
  if (typeof value === "number" && Number.isInteger(value) && !Number.isSafeInteger(value)) {
    throw new Error("integer beyond 2^53");
  }
  if (typeof value === "string" && /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(value)) {
    throw new Error("lone surrogate");
  }
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(canonical(k) && k)}:${canonical(value[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}
function parseCanonical(bytes, name) {
  let value;
  try {
    value = JSON.parse(utf8.decode(bytes));
  } catch (e) {
    fail(`${name} n'est pas du JSON`, `${name} is not JSON`);
  }
  let again = null;
  try {
    again = enc.encode(canonical(value));
  } catch (e) {
    // what rfc8785 refuses to write is not canonical either
  }
  if (!again || !equal(again, bytes)) {
    fail(`${name} n'est pas du JSON canonique`, `${name} is not canonical JSON`);
  }
  return value;
}

function publicKeyFromPem(text) {
  const m = /^-----BEGIN PUBLIC KEY-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END PUBLIC KEY-----\r?\n?$/.exec(
    text,
  );
  const der = m ? unb64(m[1].replace(/\s/g, ""), "la clé / the key") : new Uint8Array();
  const prefix = fromHex("302a300506032b6570032100"); // SubjectPublicKeyInfo, id-Ed25519
  if (der.length !== 44 || !equal(der.subarray(0, 12), prefix)) {
    fail("n'est pas une clé publique Ed25519", "is not an Ed25519 public key");
  }
  // Exactly the form scelle writes, as `scelle verify` requires (custody.checks).
  if (text !== `-----BEGIN PUBLIC KEY-----\n${b64(der)}\n-----END PUBLIC KEY-----\n`) {
    fail("la clé publique n'est pas sous la forme écrite par scelle", "the public key is not in the form scelle writes");
  }
  return { raw: der.subarray(12), der };
}

function sshString(bytes, at) {
  if (at + 4 > bytes.length) fail("signature SSH tronquée", "SSH signature truncated");
  const n = new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0);
  if (at + 4 + n > bytes.length) fail("signature SSH tronquée", "SSH signature truncated");
  return [bytes.subarray(at + 4, at + 4 + n), at + 4 + n];
}
const sshStr = (b) => {
  const out = new Uint8Array(4 + b.length);
  new DataView(out.buffer).setUint32(0, b.length);
  out.set(b, 4);
  return out;
};
const sshPublicBlob = (raw) => concat(sshStr(enc.encode("ssh-ed25519")), sshStr(raw));

async function sshFingerprint(raw) {
  return "SHA256:" + b64(await sha256(sshPublicBlob(raw))).replace(/=+$/, "");
}
async function minisignKeyId(raw) {
  return (await sha256(concat(enc.encode("scelle minisign key id\n"), raw))).subarray(0, 8);
}
// alg: the signature type, 1 for a note signature, 4 for a cosignature/v1.
async function noteKeyId(name, raw, alg = 1) {
  return (await sha256(concat(enc.encode(name + "\n"), new Uint8Array([alg]), raw))).subarray(0, 4);
}

// C2SP signed note (custody/note.py parse_note): its body and signature lines [name, blob].
function parseNote(text) {
  const at = text.indexOf("\n\n");
  if (at <= 0 || !text.endsWith("\n")) fail("le point de contrôle n'est pas une note signée", "the checkpoint is not a signed note");
  const signatures = [];
  for (const line of text.slice(at + 2, -1).split("\n")) {
    if (!line.startsWith("— ")) fail("note signée : ligne de signature invalide", "signed note: bad signature line");
    const rest = line.slice(2);
    const space = rest.indexOf(" ");
    const who = space < 0 ? rest : rest.slice(0, space);
    const blob = unb64(space < 0 ? "" : rest.slice(space + 1), "signature");
    if (!new RegExp(`^[^${PY_SPACE}+]+$`).test(who) || blob.length < 5) {
      fail("note signée : ligne de signature mal formée", "signed note: malformed signature line");
    }
    signatures.push([who, blob]);
  }
  return { body: text.slice(0, at + 1), signatures };
}

// C2SP signed note holding a tlog checkpoint; returns {origin, size, root, body}.
async function verifyCheckpoint(text, name, raw) {
  const { body, signatures } = parseNote(text);
  const kid = await noteKeyId(name, raw);
  const mine = signatures.find(([who, blob]) => who === name && equal(blob.subarray(0, 4), kid));
  if (!mine) fail(`le point de contrôle n'est pas signé par la clé ${name}`, `checkpoint is not signed by key ${name}`);
  if (!(await ed25519Verify(raw, mine[1].subarray(4), enc.encode(body)))) {
    fail("la signature du point de contrôle n'est pas valide", "checkpoint signature does not verify");
  }
  const lines = body.split("\n");
  if (lines.length < 4 || !lines[0] || !/^(0|[1-9][0-9]*)$/.test(lines[1])) {
    fail("corps du point de contrôle mal formé", "malformed checkpoint body");
  }
  const root = unb64(lines[2], "racine / root");
  if (root.length !== 32) fail("racine de 32 octets attendue", "root is not 32 bytes");
  return { origin: lines[0], size: Number(lines[1]), root, body };
}

// ---------------------------------------------------------------- RFC 9162 Merkle tree
const leafHash = (bytes) => sha256(concat(new Uint8Array([0]), bytes));
const nodeHash = (l, r) => sha256(concat(new Uint8Array([1]), l, r));

// §2.1.3.2: the root an inclusion proof leads to (it fails on a proof of the wrong length).
async function inclusionRoot(index, size, leaf, proof) {
  if (!(index >= 0 && index < size)) fail("entrée hors de l'arbre", "leaf index outside the tree");
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) fail("preuve d'inclusion trop longue", "inclusion proof is too long");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) fail("preuve d'inclusion trop courte", "inclusion proof is too short");
  return r;
}

// A compact range (custody/merkle.py CompactRange): the frontier of [0, size).
const lowBit = (n) => n - (n & (n - 1));
function frontierCount(size) {
  let count = 0;
  for (let n = size; n; n &= n - 1) count += 1; // one perfect subtree per bit
  return count;
}
function alignedLevels(lo, hi) {
  const levels = [];
  while (lo < hi) {
    let level = lo ? Math.log2(lowBit(lo)) : Math.floor(Math.log2(hi - lo));
    while (2 ** level > hi - lo) level -= 1;
    levels.push(level);
    lo += 2 ** level;
  }
  return levels;
}
class CompactRange {
  constructor(size, hashes) {
    this.size = size;
    this.hashes = hashes;
  }
  async pushNode(level, h) {
    const width = 2 ** level;
    if (this.size % width) fail("preuve de plage mal alignée", "range proof is misaligned");
    let index = this.size / width;
    while (index % 2 === 1) {
      if (!this.hashes.length) fail("preuve de plage trop courte", "range proof's left side is too short");
      h = await nodeHash(this.hashes.pop(), h);
      index = Math.floor(index / 2);
    }
    this.hashes.push(h);
    this.size += width;
  }
  async root() {
    if (!this.hashes.length) return sha256(new Uint8Array());
    let acc = this.hashes[this.hashes.length - 1];
    for (let i = this.hashes.length - 2; i >= 0; i -= 1) acc = await nodeHash(this.hashes[i], acc);
    return acc;
  }
}

// ---------------------------------------------------------------- streamed SHA-256
let sha256Hasher = null; // one WebAssembly instance for every file: a day of segments is 86,400
async function hashFile(file, progress) {
  sha256Hasher = sha256Hasher || (await hashwasm.createSHA256());
  const hasher = sha256Hasher;
  hasher.init();
  // The next chunk is read while this one is hashed: reading and hashing one after the
  // other ran at ~135 MB/s here, below either alone (bench/verify_page.py).
  const read = (at) => (at < file.size ? file.slice(at, at + CHUNK).arrayBuffer() : null);
  let next = read(0);
  for (let at = 0; at < file.size; at += CHUNK) {
    const chunk = new Uint8Array(await next);
    next = read(at + CHUNK);
    hasher.update(chunk);
    progress(chunk.length);
  }
  return hasher.digest("hex");
}

// ---------------------------------------------------------------- export checks
async function exportChecks(folder, report) {
  report.stage = "manifest";
  // Refused before it is read, as `scelle verify` does: junk of gigabytes is not a manifest.
  if (folder.file("manifest.json").size > DATA.max_manifest_bytes) {
    fail("manifest.json est bien trop gros pour un manifeste", "manifest.json is far too large for a manifest");
  }
  const manifestBytes = await folder.bytes("manifest.json");
  const manifest = parseCanonical(manifestBytes, "manifest.json");
  if (manifest.format !== DATA.export_format) {
    fail(`manifest.json est au format ${manifest.format}, pas ${DATA.export_format}`, `manifest.json is of format ${manifest.format}, not ${DATA.export_format}`);
  }
  const manifestSha = hex(await sha256(manifestBytes));
  report.stage = "keys";
  const key = publicKeyFromPem(await folder.text("keys/signer.pub.pem"));
  report.key = key;
  // The checkpoint, and the key name the site signs it with: the witnesses check reads them.
  [report.checkpointFile, report.siteName] = ["ledger/checkpoint.txt", (manifest.site || {}).name];
  report.manifest = manifest;
  report.manifestSha = manifestSha;
  const steps = {};
  let proof = null;

  steps.keys = async () => {
    const line = pyWords(await folder.text("keys/allowed_signers"));
    if (line.length < 4 || line[line.length - 2] !== "ssh-ed25519") fail("keys/allowed_signers est mal formé", "keys/allowed_signers is malformed");
    const ssh = unb64(line[line.length - 1], "allowed_signers");
    const mini = pyLines(await folder.text("keys/minisign.pub"));
    const miniBlob = mini.length > 1 ? unb64(mini[1], "minisign.pub") : new Uint8Array();
    if (!equal(ssh.subarray(-32), key.raw) || !equal(miniBlob.subarray(10), key.raw)) {
      fail("les trois fichiers de clé de keys/ ne sont pas la même clé", "the three key files in keys/ are not the same key");
    }
    if (!equal(miniBlob.subarray(2, 10), await minisignKeyId(key.raw))) {
      fail("keys/minisign.pub a un identifiant de clé inattendu", "keys/minisign.pub has an unexpected key id");
    }
    const signer = manifest.signer || {};
    if (signer.ssh_fingerprint !== (await sshFingerprint(key.raw)) || signer.der_sha256 !== hex(await sha256(key.der))) {
      fail("le manifeste désigne une autre clé de signature", "the manifest names another signing key");
    }
  };
  steps.signature = async () => {
    if (!(await ed25519Verify(key.raw, await folder.bytes("manifest.json.sig"), manifestBytes))) {
      fail("la signature Ed25519 du manifeste n'est pas valide", "the manifest's Ed25519 signature does not verify");
    }
  };
  steps["ssh-signature"] = async () => {
    const lines = pyLines(pyStrip(await folder.text("manifest.json.sshsig")));
    if (lines.length < 3 || lines[0] !== "-----BEGIN SSH SIGNATURE-----" || lines[lines.length - 1] !== "-----END SSH SIGNATURE-----") {
      fail("pas une signature SSH", "not an armored SSH signature");
    }
    const blob = unb64(lines.slice(1, -1).join(""), "SSHSIG");
    if (!equal(blob.subarray(0, 10), concat(enc.encode("SSHSIG"), new Uint8Array([0, 0, 0, 1])))) {
      fail("pas une signature SSHSIG version 1", "not an SSHSIG version 1 signature");
    }
    let [pub, at] = sshString(blob, 10);
    let ns, hashAlg, sigBlob;
    [ns, at] = sshString(blob, at);
    [, at] = sshString(blob, at);
    [hashAlg, at] = sshString(blob, at);
    [sigBlob, at] = sshString(blob, at);
    if (!equal(pub, sshPublicBlob(key.raw))) fail("signature SSH d'une autre clé", "SSH signature is by another key");
    if (!equal(ns, enc.encode(DATA.ssh_namespace)) || !equal(hashAlg, enc.encode("sha512"))) {
      fail(`signature SSH hors de l'espace ${DATA.ssh_namespace} ou sans sha512`, `SSH signature is not for namespace ${DATA.ssh_namespace} with sha512`);
    }
    const [type, at2] = sshString(sigBlob, 0);
    const [signature] = sshString(sigBlob, at2);
    if (!equal(type, enc.encode("ssh-ed25519"))) fail("signature SSH non Ed25519", "SSH signature is not Ed25519");
    const signed = concat(
      enc.encode("SSHSIG"),
      sshStr(enc.encode(DATA.ssh_namespace)),
      sshStr(new Uint8Array()),
      sshStr(enc.encode("sha512")),
      sshStr(await sha512(manifestBytes)),
    );
    if (!(await ed25519Verify(key.raw, signature, signed))) fail("la signature SSH n'est pas valide", "SSH signature does not verify");
  };
  steps.minisign = async () => {
    const lines = pyLines(await folder.text("manifest.json.minisig"));
    if (lines.length < 4 || !lines[2].startsWith("trusted comment: ")) fail("pas une signature minisign", "not a minisign signature");
    const blob = unb64(lines[1], "minisig");
    const global = unb64(lines[3], "minisig");
    if (blob.length !== 74 || blob[0] !== 0x45 || blob[1] !== 0x44) {
      fail("pas une signature minisign Ed25519 pré-hachée", "minisign signature is not a pre-hashed Ed25519 signature");
    }
    if (!equal(blob.subarray(2, 10), await minisignKeyId(key.raw))) fail("signature minisign d'une autre clé", "minisign signature is by another key");
    const prehash = fromHex(await hashwasm.blake2b(manifestBytes, 512));
    if (!(await ed25519Verify(key.raw, blob.subarray(10), prehash))) fail("la signature minisign n'est pas valide", "minisign signature does not verify");
    const comment = lines[2].slice("trusted comment: ".length);
    if (!(await ed25519Verify(key.raw, global, concat(blob.subarray(10), enc.encode(comment))))) {
      fail("le commentaire de confiance minisign n'est pas signé", "minisign trusted comment signature does not verify");
    }
    if (!comment.includes(manifestSha)) fail("le commentaire minisign désigne un autre manifeste", "the minisign trusted comment names another manifest");
  };
  steps.sha256sums = async () => {
    const sums = await folder.bytes("SHA256SUMS");
    if ((manifest.sha256sums || {}).sha256 !== hex(await sha256(sums))) {
      fail("SHA256SUMS ne correspond pas à l'empreinte du manifeste", "SHA256SUMS does not match the hash in the manifest");
    }
    const expected = manifest.files.map((f) => `${f.sha256}  ${f.path}\n`).join("");
    if (!equal(sums, enc.encode(expected))) fail("SHA256SUMS ne liste pas exactement les fichiers du manifeste", "SHA256SUMS does not list exactly the manifest's files");
  };
  steps.files = async () => {
    const bad = [];
    const total = manifest.files.reduce((n, f) => n + (folder.has(f.path) ? folder.file(f.path).size : 0), 0);
    let done = 0;
    for (const item of manifest.files) {
      const parts = item.path.split("/");
      if (parts.includes("..") || item.path.startsWith("/")) {
        fail(`le manifeste liste un chemin hors de l'export : ${item.path}`, `manifest lists a path outside the export: ${item.path}`);
      }
      if (!folder.has(item.path)) {
        bad.push([`${item.path} absent`, `${item.path} missing`]);
        continue;
      }
      const file = folder.file(item.path);
      if (file.size !== item.size) {  // no need to read it: the size alone says it changed
        bad.push([`${item.path} modifié`, `${item.path} altered`]);
        done += file.size;
        continue;
      }
      showProgress(done, total, item.path);
      const digest = await hashFile(file, (n) => {
        done += n;
        showProgress(done, total, item.path);
      });
      if (file.size !== item.size || digest !== item.sha256) bad.push([`${item.path} modifié`, `${item.path} altered`]);
    }
    showProgress(total, total, "");
    if (bad.length) {
      const few = bad.slice(0, 5);
      fail(
        `${bad.length} fichier(s) ne correspondent pas au manifeste : ${few.map((b) => b[0]).join(", ")}`,
        `${bad.length} file(s) do not match the manifest: ${few.map((b) => b[1]).join(", ")}`,
      );
    }
  };
  steps.inventory = async () => {
    const listed = new Set([...manifest.files.map((f) => f.path), ...DATA.export_fixed]);
    if ("agents" in manifest) DATA.export_fixed_with_agents.forEach((n) => listed.add(n));
    const present = new Set(folder.files.keys());
    DATA.export_optional.filter((n) => present.has(n)).forEach((n) => listed.add(n)); // the checks say if they must be
    const extra = [...present].filter((p) => !listed.has(p)).sort();
    const missing = [...listed].filter((p) => !present.has(p)).sort();
    if (extra.length) fail(`fichier(s) absents du manifeste : ${extra.slice(0, 5).join(", ")}`, `file(s) not in the manifest: ${extra.slice(0, 5).join(", ")}`);
    if (missing.length) fail(`fichier(s) manquants : ${missing.slice(0, 5).join(", ")}`, `file(s) missing: ${missing.slice(0, 5).join(", ")}`);
  };
  const proofFile = async () => {
    let doc;
    try {
      // Where the browser tells the number as written (context.source), 18.0 or 1e1 is
      // not an integer, as in Python.
      doc = JSON.parse(await folder.text("ledger/inclusion.json"), (key, value, context) =>
        typeof value === "number" && context && !/^(0|[1-9][0-9]*)$/.test(context.source) ? NaN : value,
      );
    } catch (e) {
      if (e instanceof CheckFailure) throw e;
      fail("ledger/inclusion.json n'est pas un objet JSON", "ledger/inclusion.json is not a JSON object");
    }
    const int = (v) => Number.isSafeInteger(v) && v >= 0;
    if (!doc || typeof doc !== "object" || !int(doc.index) || !int(doc.tree_size) || !Array.isArray(doc.hashes)) {
      fail("ledger/inclusion.json est mal formé", "ledger/inclusion.json is malformed");
    }
    const h32 = (v, what) => {
      const h = unb64(v, what);
      if (h.length !== 32) fail(`${what} ne fait pas 32 octets`, `${what} is not 32 bytes`);
      return h;
    };
    return {
      index: doc.index,
      size: doc.tree_size,
      leaf: h32(doc.leaf_hash, "leaf_hash"),
      hashes: doc.hashes.map((h) => h32(h, "hashes[]")),
      root: h32(doc.root, "root"),
    };
  };
  steps.inclusion = async () => {
    const body = await folder.bytes("ledger/entry.json");
    const entry = parseCanonical(body, "ledger/entry.json");
    proof = await proofFile();
    const id = (manifest.requisition || {}).id;
    const subject = entry.subject || {};
    if (entry.action !== "requisition.export" || Object.keys(subject).length !== 1 || subject.requisition !== id) {
      fail("ledger/entry.json n'est pas l'entrée de cet export", "ledger/entry.json is not this export's ledger entry");
    }
    if ((entry.data || {}).manifest_sha256 !== manifestSha) fail("l'entrée du registre enregistre un autre manifeste", "the ledger entry records another manifest");
    if (entry.seq !== proof.index || !equal(await leafHash(body), proof.leaf)) {
      fail("la preuve d'inclusion est celle d'une autre entrée", "the inclusion proof is for another ledger entry");
    }
    const root = await inclusionRoot(proof.index, proof.size, proof.leaf, proof.hashes);
    if (!equal(root, proof.root)) fail("la preuve d'inclusion ne mène pas à la racine", "inclusion proof does not lead to the root");
    report.seq = entry.seq;
  };
  steps.checkpoint = async () => {
    const p = proof || (await proofFile());
    const site = manifest.site || {};
    const cp = await verifyCheckpoint(await folder.text("ledger/checkpoint.txt"), site.name || "", key.raw);
    if (cp.origin !== site.ledger_origin) fail("le point de contrôle est celui d'un autre registre", "the checkpoint is of another ledger");
    if (cp.size !== p.size || !equal(cp.root, p.root)) {
      fail("la preuve d'inclusion ne mène pas au point de contrôle signé", "the inclusion proof does not lead to the signed checkpoint");
    }
    // The same proof and checkpoint in C2SP tlog-proof form (exports since issue 18).
    if (folder.has(DATA.tlog_proof)) {
      const text = await folder.text("ledger/checkpoint.txt");
      const wanted = [DATA.tlog_proof_header, `index ${p.index}`, ...p.hashes.map(b64)].join("\n") + "\n\n" + text;
      if ((await folder.text(DATA.tlog_proof)) !== wanted) {
        fail(`${DATA.tlog_proof} ne dit pas ce que disent la preuve d'inclusion et le point de contrôle`, `${DATA.tlog_proof} does not say what the inclusion proof and the checkpoint say`);
      }
    }
    report.checkpoint = cp;
  };
  steps.cover = async () => {
    for (const name of ["documents/cover.html", "documents/cover.pdf", "VERIFY.txt"]) {
      if (!(await ed25519Verify(key.raw, await folder.bytes(`${name}.sig`), await folder.bytes(name)))) {
        fail(`la signature de ${name} n'est pas valide`, `the signature of ${name} does not verify`);
      }
    }
    const html = (await folder.text("documents/cover.html")).replaceAll("<wbr>", "");
    const seq = parseCanonical(await folder.bytes("ledger/entry.json"), "ledger/entry.json").seq;
    const grouped = manifestSha.match(/.{1,8}/g).join(" ");
    if ((!html.includes(manifestSha) && !html.includes(grouped)) || !html.includes(`entrée n° ${seq}`)) {
      fail("le bordereau mentionne un autre manifeste ou une autre entrée du registre", "the cover sheet states another manifest or ledger entry");
    }
    if ("agents" in manifest) {
      const sums = await folder.bytes("documents/SHA256SUMS");
      if (!(await ed25519Verify(key.raw, await folder.bytes("documents/SHA256SUMS.sig"), sums))) {
        fail("la signature de documents/SHA256SUMS n'est pas valide", "the signature of documents/SHA256SUMS does not verify");
      }
      const lines = new Map();
      for (const line of pyLines(new TextDecoder("utf-8", { ignoreBOM: true }).decode(sums))) {
        const at = line.indexOf("  ");
        if (at < 0) fail("documents/SHA256SUMS n'est pas au format de sha256sum", "documents/SHA256SUMS is not in sha256sum's format");
        lines.set(line.slice(at + 2), line.slice(0, at));
      }
      const wanted = {
        "cover.html": hex(await sha256(await folder.bytes("documents/cover.html"))),
        "cover.pdf": hex(await sha256(await folder.bytes("documents/cover.pdf"))),
        "../manifest.json": manifestSha,
      };
      if (lines.size !== 3 || Object.entries(wanted).some(([name, digest]) => lines.get(name) !== digest)) {
        fail("les fichiers du bordereau ne sont pas ceux de cet export (documents/SHA256SUMS)", "the cover sheet's files are not this export's (documents/SHA256SUMS)");
      }
    }
    const says = stated(await folder.text("VERIFY.txt"));
    if (says.requisition !== (manifest.requisition || {}).id || says.manifest !== manifestSha || says.seq !== String(seq)) {
      fail("VERIFY.txt est celui d'un autre export", "VERIFY.txt is another export's");
    }
    if (says.ssh !== (await sshFingerprint(key.raw))) fail("VERIFY.txt désigne une autre clé de signature", "VERIFY.txt names another signing key");
  };
  return steps;
}

// exporters/verify_text.py stated(): the lines binding VERIFY.txt to its export.
function stated(text) {
  const lines = pyLines(text);
  const head = new RegExp(`^${DATA.verify_txt.head.replace("{}", "(.+)")}$`).exec(lines[0] || "");
  if (!head) fail("VERIFY.txt ne commence pas par l'export qu'il décrit", "VERIFY.txt does not start with the export it is about");
  const one = (prefix) => {
    const found = lines.filter((l) => l.startsWith(prefix));
    if (found.length !== 1) fail(`VERIFY.txt n'indique pas une seule fois « ${prefix.trim()} »`, `VERIFY.txt does not state '${prefix.trim()}' exactly once`);
    return found[0].slice(prefix.length);
  };
  return {
    requisition: head[1],
    ssh: one(DATA.verify_txt.ssh),
    manifest: one(DATA.verify_txt.sha),
    seq: one(DATA.verify_txt.seq),
  };
}

// ---------------------------------------------------------------- bundle checks
async function bundleChecks(folder, report) {
  report.stage = "keys";
  const key = publicKeyFromPem(await folder.text("key.pub.pem"));
  report.key = key;
  report.stage = "proof";
  const proof = parseCanonical(await folder.bytes("proof.json"), "proof.json");
  [report.checkpointFile, report.siteName] = ["checkpoint.txt", proof.key_name];
  const files = new Set(DATA.bundle_files);
  if (folder.has(DATA.page)) files.add(DATA.page);
  const steps = {};
  steps.checkpoint = async () => {
    const body = await folder.bytes("checkpoint.body");
    if (!(await ed25519Verify(key.raw, await folder.bytes("checkpoint.sig"), body))) {
      fail("la signature de checkpoint.body n'est pas valide", "the signature of checkpoint.body does not verify");
    }
    const cp = await verifyCheckpoint(await folder.text("checkpoint.txt"), proof.key_name, key.raw);
    if (utf8.decode(body) !== cp.body) fail("checkpoint.body n'est pas le corps de la note signée", "checkpoint.body is not the signed note's body");
    if (cp.origin !== proof.origin || cp.size !== proof.tree_size || b64(cp.root) !== proof.root) {
      fail("proof.json désigne un autre point de contrôle que checkpoint.txt", "proof.json names another checkpoint than checkpoint.txt");
    }
    report.checkpoint = cp;
  };
  steps.sha256sums = async () => {
    const listed = new Map();
    for (const line of pyLines(await folder.text("SHA256SUMS"))) {
      const at = line.indexOf("  ");
      listed.set(at < 0 ? "" : line.slice(at + 2), at < 0 ? line : line.slice(0, at));
    }
    const want = [...files].filter((n) => n !== "SHA256SUMS").sort();
    if (listed.size !== want.length || want.some((n) => !listed.has(n))) {
      fail("SHA256SUMS ne liste pas exactement les fichiers du lot", "SHA256SUMS does not list exactly the bundle's files");
    }
    for (const name of want) {
      if (hex(await sha256(await folder.bytes(name))) !== listed.get(name)) {
        fail(`${name} ne correspond pas à SHA256SUMS`, `${name} does not match SHA256SUMS`);
      }
    }
  };
  steps.inventory = async () => {
    const present = new Set(folder.files.keys());
    const odd = [...new Set([...present, ...files])].filter((n) => !(present.has(n) && files.has(n))).sort();
    if (odd.length) fail(`fichier(s) ajoutés ou manquants : ${odd.slice(0, 5).join(", ")}`, `file(s) added or missing: ${odd.slice(0, 5).join(", ")}`);
  };
  steps.entries = async () => {
    if (proof.format !== DATA.bundle_format) fail(`proof.json n'est pas ${DATA.bundle_format}`, `proof.json is not ${DATA.bundle_format}`);
    const first = proof.first;
    const last = proof.last;
    const size = proof.tree_size;
    const raw = await folder.bytes("entries.jsonl");
    const bodies = [];
    let at = 0;
    for (let i = 0; i < raw.length; i += 1) {
      if (raw[i] === 10) {
        bodies.push(raw.subarray(at, i));
        at = i + 1;
      }
    }
    if (at !== raw.length) fail("entries.jsonl ne se termine pas par un saut de ligne", "entries.jsonl does not end with a newline");
    if (bodies.length !== last - first + 1) {
      fail(`entries.jsonl contient ${bodies.length} entrées, pas ${last - first + 1}`, `entries.jsonl holds ${bodies.length} entries, not ${last - first + 1}`);
    }
    bodies.forEach((body, i) => {
      const entry = parseCanonical(body, `entries.jsonl, ligne ${i + 1}`);
      if (entry.seq !== first + i) fail(`la ligne ${i + 1} est l'entrée ${entry.seq}, pas ${first + i}`, `line ${i + 1} is entry ${entry.seq}, not ${first + i}`);
    });
    const left = proof.left.map((h) => unb64(h, "left"));
    const right = proof.right.map((n) => unb64(n.hash, "right"));
    const levels = alignedLevels(last + 1, size);
    if (left.length !== frontierCount(first) || right.length !== levels.length || [...left, ...right].some((h) => h.length !== 32)) {
      fail("la preuve de plage n'a pas le bon nombre de condensats", "the range proof has the wrong number of hashes");
    }
    const tree = new CompactRange(first, left);
    for (const body of bodies) await tree.pushNode(0, await leafHash(body));
    for (let i = 0; i < right.length; i += 1) await tree.pushNode(levels[i], right[i]);
    if (b64(await tree.root()) !== proof.root) {
      fail("les entrées ne redonnent pas la racine signée : modifiées, ajoutées ou retirées", "the entries do not rebuild the signed root: altered, added or removed");
    }
    report.entries = bodies.length;
  };
  return steps;
}

// ---------------------------------------------------------------- witnesses
// custody/note.py parse_verifier_key: `<name>+<hex key id>+<base64(alg || key)>`.
async function parseVkey(vkey, alg) {
  const [name, hexId, ...rest] = vkey.split("+");
  const key64 = rest.join("+"); // base64 has '+' too: split("+", 2) in Python
  if (!rest.length) {
    fail("la clé de vérification doit avoir la forme <nom>+<id de clé>+<clé en base64>", "verifier key must be <name>+<key id>+<base64 key>");
  }
  if (!name) fail("nom de clé invalide '' : ni espace ni '+' admis", "invalid key name '': no spaces or '+' allowed");
  if (!isB64(key64)) fail("clé de vérification : la clé n'est pas en base64", "verifier key: key is not base64");
  const raw = unb64(key64);
  if (raw.length !== 33 || raw[0] !== alg) fail("clé de vérification : ce n'est pas une clé Ed25519", "verifier key: not an Ed25519 key");
  if (hex(await noteKeyId(name, raw.subarray(1), alg)) !== hexId.toLowerCase()) {
    fail("clé de vérification : l'identifiant de clé ne correspond pas au nom et à la clé", "verifier key: key id does not match name and key");
  }
  return { name, key: raw.subarray(1) };
}

// custody/policy.py parse_policy: a C2SP tlog-policy (log, witness, group and quorum
// lines), read by the same rules and refused for the same reasons.
async function parsePolicy(text, file) {
  const no = (fr, en) => fail(`${file} : ${fr}`, `${file}: ${en}`);
  const policy = { logs: [], witnesses: new Map(), groups: new Map(), quorum: "none" };
  let quorums = 0;
  // Python reads the file with universal newlines: \r\n and \r end a line too.
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  for (let n = 1; n <= lines.length; n += 1) {
    const words = pyWords(lines[n - 1].split("#")[0]);
    if (!words.length) continue;
    const bad = (fr, en) => no(`politique de témoins, ligne ${n} : ${fr}`, `witness policy, line ${n}: ${en}`);
    const vkey = (v, alg, why) => parseVkey(v, alg).catch((e) => (e instanceof CheckFailure ? why(e.fr, e.en) : Promise.reject(e)));
    const [kind, ...args] = words;
    const defined = new Set([...policy.witnesses.keys(), ...policy.groups.keys()]);
    const twice = (label) => {
      if (defined.has(label) || label === "none") bad(`${label} est défini deux fois`, `${label} is defined twice`);
    };
    if (kind === "log" && (args.length === 1 || args.length === 2)) {
      policy.logs.push(await vkey(args[0], 1, no));
    } else if (kind === "witness" && (args.length === 2 || args.length === 3)) {
      twice(args[0]);
      const w = await vkey(args[1], 4, bad);
      // One cosignature must never count twice: the v1 message does not bind the name.
      if ([...policy.witnesses.values()].some((x) => x.name === w.name || equal(x.key, w.key))) {
        bad("la clé ou le nom de clé d'un témoin figure deux fois", "a witness's key or key name is listed twice");
      }
      if (args.length === 3 && !/^https?:\/\//.test(args[2])) bad("l'URL d'un témoin n'est pas en http ou https", "a witness URL is not http or https");
      policy.witnesses.set(args[0], w);
    } else if (kind === "group" && args.length >= 3) {
      const [label, k, ...members] = args;
      twice(label);
      if (members.some((m) => !defined.has(m)) || new Set(members).size !== members.length) {
        bad("les membres d'un groupe doivent être définis avant, une fois chacun", "group members must be defined before, once each");
      }
      const threshold = k === "all" ? members.length : k === "any" ? 1 : /^[0-9]{1,3}$/.test(k) ? Number(k) : 0;
      if (!(threshold >= 1 && threshold <= members.length)) {
        bad("le seuil d'un groupe est all, any, ou de 1 à son nombre de membres", "a group's threshold is all, any or 1 to its number of members");
      }
      policy.groups.set(label, { threshold, members });
    } else if (kind === "quorum" && args.length === 1) {
      if (args[0] !== "none" && !defined.has(args[0])) bad(`le quorum nomme ${args[0]}, défini nulle part avant`, `the quorum names ${args[0]}, defined nowhere before`);
      policy.quorum = args[0];
      quorums += 1;
    } else {
      bad("attendu : log, witness, group ou quorum avec leurs champs", "expected log, witness, group or quorum with their fields");
    }
  }
  if (quorums !== 1) no("une politique de témoins a exactement une ligne quorum", "a witness policy has exactly one quorum line");
  if (Math.max(policy.logs.length, policy.witnesses.size, policy.groups.size) > 32) {
    no("une politique de témoins liste au plus 32 registres, témoins et groupes", "a witness policy lists at most 32 logs, witnesses and groups");
  }
  return policy;
}

function quorumMet(policy, names) {
  const met = (label) => {
    if (policy.witnesses.has(label)) return names.has(policy.witnesses.get(label).name);
    const group = policy.groups.get(label);
    return group.members.filter(met).length >= group.threshold;
  };
  return policy.quorum === "none" || met(policy.quorum);
}

// C2SP tlog-cosignature (custody/cosignature.py verified_cosignatures): the names of the
// policy's witnesses with a line `— <name> base64(key id || u64 time || Ed25519
// signature)` that verifies over "cosignature/v1\ntime <time>\n" and the checkpoint body,
// key id = SHA-256(<name> || 0x0A || 0x04 || key)[:4]. Every other line is ignored.
async function cosigners(note, policy) {
  const found = new Set();
  for (const [who, blob] of note.signatures) {
    const w = [...policy.witnesses.values()].find((x) => x.name === who);
    if (!w || blob.length !== 4 + 8 + 64 || !equal(blob.subarray(0, 4), await noteKeyId(who, w.key, 4))) continue;
    const time = new DataView(blob.buffer, blob.byteOffset + 4, 8).getBigUint64(0);
    if (time >= 2n ** 63n) continue;
    const message = enc.encode(`cosignature/v1\ntime ${time}\n${note.body}`);
    if (await ed25519Verify(w.key, blob.subarray(12), message).catch(() => false)) found.add(who);
  }
  return [...found].sort();
}

// `scelle verify --policy`'s witnesses check: the site key is one of the policy's logs (if
// it names any) and the cosignatures that verify meet its quorum. Returns who vouched.
async function checkWitnesses(file, folder, report) {
  let text;
  try {
    text = utf8.decode(new Uint8Array(await file.arrayBuffer()));
  } catch (e) {
    fail(`${file.name} n'est pas un texte en UTF-8`, `${file.name} is not UTF-8 text`);
  }
  const policy = await parsePolicy(text, file.name);
  if (policy.logs.length && !policy.logs.some((l) => l.name === report.siteName && equal(l.key, report.key.raw))) {
    fail("la clé du site ne figure pas parmi les registres de la politique", "the site's key is not one of the policy's logs");
  }
  const names = await cosigners(parseNote(await folder.text(report.checkpointFile)), policy);
  if (!quorumMet(policy, new Set(names))) {
    fail(
      `le point de contrôle est contresigné par ${names.join(", ") || "aucun témoin de la politique"} : ce n'est pas le quorum de la politique`,
      `the checkpoint is cosigned by ${names.join(", ") || "no witness of the policy"}: not the policy's quorum`,
    );
  }
  if (names.length) {
    return both(`témoins qui se portent garants de son point de contrôle : ${names.join(", ")}`, `witnesses that vouch for its checkpoint: ${names.join(", ")}`);
  }
  return "";
}

// Without a policy: the names on the checkpoint's other signature lines, not checked.
async function namedCosigners(folder, report) {
  try {
    const note = parseNote(await folder.text(report.checkpointFile));
    return [...new Set(note.signatures.map(([who]) => who))].filter((who) => who !== report.siteName).sort();
  } catch (e) {
    return [];
  }
}

// ---------------------------------------------------------------- completeness
function completeness(manifest) {
  const gaps = [];
  const withheld = [];
  for (const item of manifest.items) {
    const camera = item.camera.id;
    for (const gap of item.coverage.gaps) gaps.push({ ...gap, camera, kind: gap.kind || "missing" });
    const segments = item.coverage.segments;
    const states = new Map();
    if (segments.length && "state" in segments[0]) {
      for (const s of segments) if (s.state !== "ok") states.set(s.path, s.state);
    } else {
      for (const p of item.altered_since_ingest) states.set(p, "missing");
    }
    for (const [path, kind] of states) if (DATA.withheld.includes(kind)) withheld.push({ camera, path, kind });
  }
  // Another system's export (scelle requisition attach): a file no longer the bytes taken in.
  for (const a of manifest.attachments || []) {
    for (const f of a.files) {
      if (f.state !== "ok") withheld.push({ camera: a.system, path: `attached/${a.folder}/${f.path}`, kind: f.state });
    }
  }
  const complete = manifest.complete === true && !gaps.length && !withheld.length;
  return { complete, gaps, withheld };
}

// ---------------------------------------------------------------- the page
const $ = (id) => document.getElementById(id);
const el = (tag, attrs, ...children) => {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
  children.forEach((c) => node.append(c));
  return node;
};
const both = (fr, en) => el("span", {}, el("span", { lang: "fr" }, fr), " / ", el("span", { lang: "en" }, en));

function showProgress(done, total, name) {
  const bar = $("progress");
  bar.hidden = false;
  bar.max = Math.max(total, 1);
  bar.value = done;
  const mb = (n) => (n / 1e6).toLocaleString("fr-FR", { maximumFractionDigits: 1 });
  $("progress-text").textContent = total ? `${mb(done)} / ${mb(total)} Mo (MB) ${name}` : "";
}

function setVerdict(status, first, fr, en) {
  const v = $("verdict");
  v.dataset.status = status;
  v.dataset.firstFailure = first || "";
  v.dataset.ed25519 = ed25519Impl || "";
  v.className = status;
  v.replaceChildren(el("strong", {}, both(fr, en)));
}

function addRow(id, title, failure, detail) {
  const ok = failure === null;
  const row = el(
    "tr",
    { "data-check": id, "data-ok": ok ? "true" : "false", class: ok ? "ok" : "failed" },
    el("td", { class: "status" }, ok ? "OK" : "ÉCHEC / FAIL"),
    el("td", {}, el("code", {}, id)),
    el("td", {}, both(title.fr, title.en)),
    el("td", {}, failure ? both(failure.fr, failure.en) : detail || ""),
  );
  $("checks").append(row);
}

async function run(fileList) {
  $("checks").replaceChildren();
  $("facts").replaceChildren();
  $("gaps").replaceChildren();
  $("files").replaceChildren();
  sha256Hasher = null;
  setVerdict("running", "", "Vérification en cours…", "Verifying…");
  ed25519Impl = await chooseEd25519();
  $("ed25519").textContent = ed25519Impl === "webcrypto" ? DATA.ed25519.webcrypto : DATA.ed25519.tweetnacl;
  const { folder, name, inside } = folderOf(fileList);
  $("folder").textContent = name;
  const kind = folder.has("manifest.json") ? "export" : folder.has("proof.json") ? "bundle" : null;
  if (!kind) {
    const more = inside && inside.length ? ` (${inside.join(", ")})` : "";
    setVerdict("failed", "manifest", `Ce dossier n'est pas un export scelle : choisissez le dossier qui contient manifest.json${more}`, `This folder is not a scelle export: pick the folder holding manifest.json${more}`);
    return;
  }
  // What must be read before any check (as `scelle verify`): a failure there is named
  // after what could not be read.
  const report = { stage: kind === "export" ? "manifest" : "keys" };
  let titles = { ...DATA.checks[kind] };
  let steps;
  try {
    steps = kind === "export" ? await exportChecks(folder, report) : await bundleChecks(folder, report);
  } catch (e) {
    const why = e instanceof CheckFailure ? e : new CheckFailure(String(e), String(e));
    addRow(report.stage, DATA.checks.before[kind][report.stage], why);
    setVerdict("failed", report.stage, `ÉCHEC : ${why.fr}`, `FAILED: ${why.en}`);
    return;
  }
  await showKey(report.key);
  if (kind === "export") showExport(report.manifest, report.manifestSha);
  if (kind === "export") showFiles(report.manifest);
  const expected = $("expected-key").value.trim();
  if (expected) {
    const forms = [await sshFingerprint(report.key.raw), hex(await sha256(report.key.der))];
    forms.push(forms[0].slice(7));
    steps = {
      "expected-key": async () => {
        if (!forms.includes(expected)) {
          fail(`signé par ${forms[0]}, pas par la clé ${expected}`, `signed by ${forms[0]}, not by the key ${expected}`);
        }
      },
      ...steps,
    };
    titles = { "expected-key": DATA.checks.before[kind]["expected-key"], ...titles };
  }
  // With a witness policy, its check comes last (`scelle verify --policy`); without one,
  // the names on the checkpoint's cosignature lines are shown, not checked.
  const policyFile = $("witness-policy").files[0];
  if (policyFile) {
    steps.witnesses = () => checkWitnesses(policyFile, folder, report);
    titles.witnesses = DATA.checks.policy.witnesses;
  } else {
    const names = await namedCosigners(folder, report);
    if (names.length) {
      $("facts").append(
        el("dt", {}, both("Témoins", "Witnesses")),
        el("dd", {}, both(
          `son point de contrôle porte des contresignatures de ${names.join(", ")} : non vérifiées (donnez la politique de témoins)`,
          `its checkpoint carries cosignatures by ${names.join(", ")}: not checked (give the witness policy)`,
        )),
      );
    }
  }
  const failures = [];
  for (const [id, title] of Object.entries(titles)) {
    let failure = null;
    let detail = "";
    try {
      detail = await steps[id]();
    } catch (e) {
      failure = e instanceof CheckFailure ? e : new CheckFailure(`malformé : ${e.message}`, `malformed: ${e.message}`);
      failures.push([id, failure]);
    }
    addRow(id, title, failure, detail);
  }
  if (failures.length) {
    const [id, why] = failures[0];
    setVerdict("failed", id, `ÉCHEC : ${failures.length} contrôle(s) en échec ; le premier : ${id} : ${why.fr}`, `FAILED: ${failures.length} check(s) failed; first: ${id}: ${why.en}`);
    return;
  }
  if (kind === "bundle") {
    setVerdict("ok", "", `VÉRIFIÉ : entrées ${report.entries} du registre, prouvées jusqu'au point de contrôle signé`, `VERIFIED: ${report.entries} ledger entries, proved up to the signed checkpoint`);
    return;
  }
  const state = completeness(report.manifest);
  showGaps(state, report.manifest);
  if (state.complete) {
    setVerdict("ok", "", "VÉRIFIÉ : l'export est intact et complet", "VERIFIED: the export is intact and complete");
  } else {
    setVerdict(
      "partial",
      "",
      `Export PARTIEL, VÉRIFIÉ : ${state.gaps.length} interruption(s) dans les images, ${state.withheld.length} fichier(s) écarté(s) (voir ci-dessous ; le bordereau les indique aussi)`,
      `PARTIAL export, VERIFIED: ${state.gaps.length} gap(s) in the footage, ${state.withheld.length} indexed segment(s) withheld (listed below; the cover sheet states them too)`,
    );
  }
}

async function showKey(key) {
  const facts = $("facts");
  const row = (fr, en, value) => facts.append(el("dt", {}, both(fr, en)), el("dd", {}, el("code", {}, value)));
  row("Empreinte de la clé (ssh-keygen -lf)", "Key fingerprint (ssh-keygen -lf)", await sshFingerprint(key.raw));
  row("Empreinte de la clé (openssl DER sha256)", "Key fingerprint (openssl DER sha256)", hex(await sha256(key.der)));
}

function showExport(manifest, sha) {
  const facts = $("facts");
  const r = manifest.requisition || {};
  const row = (fr, en, value) => facts.append(el("dt", {}, both(fr, en)), el("dd", {}, value));
  row("Réquisition", "Requisition", `${r.id} — ${r.pv_number || ""} — ${r.officer_name || ""}, ${r.officer_unit || ""}`);
  row("Exporté le (UTC)", "Exported at (UTC)", manifest.exported_at || "");
  row("SHA-256 du manifeste", "SHA-256 of the manifest", el("code", {}, sha));
}

// 2026-11-29T14:02:10+01:00 -> 29/11/2026 14:02:10 (UTC+01:00): the camera's local time,
// as the cover sheet states it.
function local(iso) {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(iso || "");
  if (!m) return String(iso);
  return `${m[3]}/${m[2]}/${m[1]} ${m[4]} (UTC${m[5] === "Z" ? "" : m[5]})`;
}

// The files the signed manifest lists: the only ones to open. The browser does not show
// symbolic links, empty folders or names that are not UTF-8, so the page cannot say that
// none was added; `scelle verify` and `sha256sum -c` can.
function showFiles(manifest) {
  const list = $("files");
  const roles = DATA.file_roles;
  const shown = manifest.files.slice(0, 2000);
  for (const f of shown) {
    const role = roles[f.role] || { fr: f.role, en: f.role };
    list.append(el("li", {}, el("code", {}, f.path), ` — ${role.fr} / ${role.en}, ${f.size.toLocaleString("fr-FR")} octets (bytes)`));
  }
  if (manifest.files.length > shown.length) {
    list.append(el("li", {}, `… ${manifest.files.length - shown.length} autres / more (SHA256SUMS)`));
  }
}

function showGaps(state, manifest) {
  const list = $("gaps");
  const seconds = (g) => (Date.parse(g.to_utc) - Date.parse(g.from_utc)) / 1000;
  const length = (s) => (s < 120 ? `${s} s` : `${(s / 60).toFixed(1)} min`);
  // Each camera's window first, complete or not, as the cover sheet lists them.
  for (const item of manifest.items) {
    const w = item.coverage.window;
    const camera = item.camera.id;
    const gaps = state.gaps.filter((g) => g.camera === camera).length;
    const withheld = state.withheld.filter((s) => s.camera === camera).length;
    const whole = item.coverage.complete === true && !gaps && !withheld;
    list.append(
      el(
        "li",
        { "data-camera": camera, "data-complete": whole ? "true" : "false" },
        `${camera} : ${local(w.from)} → ${local(w.to)} — `,
        whole
          ? both("complète", "complete")
          : both(`${gaps} interruption(s), ${withheld} fichier(s) écarté(s)`, `${gaps} gap(s), ${withheld} segment(s) withheld`),
      ),
    );
  }
  if (state.complete) {
    list.append(el("li", {}, both("Chaque fenêtre demandée est couverte en entier.", "Every window asked for is covered in full.")));
    return;
  }
  for (const g of state.gaps) {
    const words = DATA.gap_kinds[g.kind] || { fr: g.kind, en: g.kind };
    const what = `${g.camera} : ${local(g.from)} → ${local(g.to)} (${length(seconds(g))})`;
    list.append(el("li", { "data-kind": g.kind }, `${what} — `, both(words.fr, words.en), g.segment ? ` — ${g.segment}` : ""));
  }
  const named = new Set(state.gaps.map((g) => g.segment));
  for (const s of state.withheld) {
    if (named.has(s.path)) continue;
    const words = DATA.gap_kinds[s.kind] || { fr: s.kind, en: s.kind };
    list.append(el("li", { "data-kind": s.kind }, `${s.camera} : ${s.path} — `, both(words.fr, words.en)));
  }
}

// One run at a time: while a folder is being checked, no other can be picked (a second
// run finishing first would otherwise have its verdict overwritten by the first's).
function start() {
  const inputs = [$("export-folder"), $("expected-key"), $("witness-policy")];
  inputs.forEach((input) => (input.disabled = true));
  run($("export-folder").files)
    .catch((e) => setVerdict("failed", "", `Erreur inattendue : ${e}`, `Unexpected error: ${e}`))
    .finally(() => inputs.forEach((input) => (input.disabled = false)));
}
$("export-folder").addEventListener("change", start);
// A policy given (or changed) after the folder: the folder is checked again with it.
$("witness-policy").addEventListener("change", () => $("export-folder").files.length && start());
setVerdict("waiting", "", "Choisissez le dossier de l'export.", "Pick the export's folder.");
