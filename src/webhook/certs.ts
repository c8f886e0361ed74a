/**
 * Certificates for the webhook: a CA and a serving certificate for the Service's DNS names,
 * built and signed with node-forge (Node's crypto cannot create certificates).
 *
 * Keys come from Node's crypto (`generateKeyPair`, asynchronous and native) by default:
 * node-forge's pure-JavaScript RSA takes seconds for a 2048-bit key and blocks the event loop
 * meanwhile; forge's own generateKeyPair delegates to Node's *synchronous* generator when it
 * may, which is as fast but still blocks. bench/webhook.bench.ts measures all three.
 */
import { generateKeyPair, randomBytes, X509Certificate } from "node:crypto";
import { promisify } from "node:util";
import forge from "node-forge";
import { PromshardError } from "../errors.ts";

export interface KeyPair {
  /** PKCS#1 ("RSA PRIVATE KEY"). */
  keyPem: string;
  /** SPKI ("PUBLIC KEY"). */
  publicKeyPem: string;
}

export interface Issued {
  certPem: string;
  keyPem: string;
}

/** How keys are made: Node's native generator (default) or node-forge (pure JavaScript or forge's default). */
export type KeyGenerator = "node" | "forge" | "forge-pure-js";

const generateRsa = promisify(generateKeyPair);
export const KEY_BITS = 2048;

export async function newKeyPair(how: KeyGenerator = "node"): Promise<KeyPair> {
  if (how === "node") {
    const { privateKey, publicKey } = await generateRsa("rsa", {
      modulusLength: KEY_BITS,
      privateKeyEncoding: { type: "pkcs1", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    });
    return { keyPem: privateKey, publicKeyPem: publicKey };
  }
  // forge.options is missing from @types/node-forge.
  const options = (forge as unknown as { options: { usePureJavaScript: boolean } }).options;
  const previous = options.usePureJavaScript;
  options.usePureJavaScript = how === "forge-pure-js";
  try {
    const keys = forge.pki.rsa.generateKeyPair({ bits: KEY_BITS, e: 0x10001 });
    return {
      keyPem: lf(forge.pki.privateKeyToPem(keys.privateKey)),
      publicKeyPem: lf(forge.pki.publicKeyToPem(keys.publicKey)),
    };
  } finally {
    options.usePureJavaScript = previous;
  }
}

/** The names a Service is reached by in the cluster, as the API server asks for them. */
export function serviceDnsNames(service: string, namespace: string, clusterDomain = "cluster.local"): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.${clusterDomain}`,
  ];
}

export interface CertOptions {
  commonName: string;
  /** From notBefore (an hour before `now`, for clock skew) to notAfter. */
  validityMs: number;
  now: Date;
  key?: KeyPair;
  keyGenerator?: KeyGenerator;
}

const SKEW_MS = 60 * 60 * 1000;

function base(keys: KeyPair, commonName: string, validityMs: number, now: Date): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicKeyPem);
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f; // positive
  cert.serialNumber = serial.toString("hex");
  cert.validity.notBefore = new Date(now.getTime() - SKEW_MS);
  cert.validity.notAfter = new Date(now.getTime() + validityMs);
  cert.setSubject([{ name: "commonName", value: commonName }]);
  return cert;
}

function sign(cert: forge.pki.Certificate, issuerKeyPem: string): string {
  cert.sign(forge.pki.privateKeyFromPem(issuerKeyPem) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return lf(forge.pki.certificateToPem(cert));
}

/** forge writes CRLF; PEM tools and Kubernetes objects use LF. */
function lf(pem: string): string {
  return pem.replace(/\r\n/g, "\n");
}

export async function createCA(opts: CertOptions): Promise<Issued> {
  const keys = opts.key ?? (await newKeyPair(opts.keyGenerator));
  const cert = base(keys, opts.commonName, opts.validityMs, opts.now);
  cert.setIssuer(cert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  return { certPem: sign(cert, keys.keyPem), keyPem: keys.keyPem };
}

export interface ServingOptions extends CertOptions {
  dnsNames: readonly string[];
  ipAddresses?: readonly string[];
}

export async function issueServing(ca: Issued, opts: ServingOptions): Promise<Issued> {
  if (opts.dnsNames.length === 0 && (opts.ipAddresses ?? []).length === 0) {
    throw new PromshardError("certificate_invalid", "a serving certificate needs at least one DNS name or IP address");
  }
  const keys = opts.key ?? (await newKeyPair(opts.keyGenerator));
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const cert = base(keys, opts.commonName, opts.validityMs, opts.now);
  cert.setIssuer(caCert.subject.attributes);
  // Never valid beyond the CA that vouches for it.
  if (cert.validity.notAfter > caCert.validity.notAfter) cert.validity.notAfter = caCert.validity.notAfter;
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
    {
      name: "subjectAltName",
      altNames: [
        ...opts.dnsNames.map((value) => ({ type: 2, value })),
        ...(opts.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
      ],
    },
  ]);
  return { certPem: sign(cert, ca.keyPem), keyPem: keys.keyPem };
}

export interface CertInfo {
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
  ipAddresses: string[];
  isCA: boolean;
  fingerprint: string;
}

/** The PEM blocks of a bundle, in order. */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)?.map((s) => `${s}\n`) ?? [];
}

export function describeCert(pem: string): CertInfo {
  let x: X509Certificate;
  try {
    x = new X509Certificate(pem);
  } catch (err) {
    throw new PromshardError("certificate_invalid", `not a PEM certificate: ${(err as Error).message}`, { cause: err });
  }
  const sans = (x.subjectAltName ?? "").split(", ").filter((s) => s !== "");
  return {
    subject: x.subject,
    issuer: x.issuer,
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    dnsNames: sans.filter((s) => s.startsWith("DNS:")).map((s) => s.slice(4)),
    ipAddresses: sans.filter((s) => s.startsWith("IP Address:")).map((s) => s.slice(11)),
    isCA: x.ca,
    fingerprint: x.fingerprint256,
  };
}

/** Whether `certPem` was issued and signed by `caPem`. */
export function signedBy(certPem: string, caPem: string): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}
