/**
 * Certificates and keys for a test control plane (test/support/kube.ts): a CA, certificates it
 * signs (serving, client) and a bare key pair (the service-account token signer). Keys are RSA
 * 2048 from node:crypto (native, ~50 ms each, generated in parallel); node-forge builds and signs
 * the X.509 certificates, which node:crypto cannot. Everything is PEM text.
 */
import { generateKeyPair, randomBytes } from "node:crypto";
import { promisify } from "node:util";
import forge from "node-forge";

export interface KeyPair {
  /** PKCS#1 ("RSA PRIVATE KEY"): what kube-apiserver, etcd and kubeconfigs all accept. */
  keyPem: string;
  /** SPKI ("PUBLIC KEY"). */
  publicKeyPem: string;
}

export interface Issued extends KeyPair {
  certPem: string;
}

export interface CertSpec {
  commonName: string;
  /** Subject O= entries: Kubernetes reads them as the client's groups. */
  organizations?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  usage: "server" | "client";
}

const generateRsa = promisify(generateKeyPair);

export async function newKeyPair(): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateRsa("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return { keyPem: privateKey, publicKeyPem: publicKey };
}

function baseCertificate(keys: KeyPair, subject: forge.pki.CertificateField[], days: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicKeyPem);
  // Positive serial: clear the top bit of the first byte.
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  cert.serialNumber = serial.toString("hex");
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60 * 60 * 1000); // Tolerates clock skew between processes.
  cert.validity.notAfter = new Date(now + days * 24 * 60 * 60 * 1000);
  cert.setSubject(subject);
  return cert;
}

function sign(cert: forge.pki.Certificate, issuerKeyPem: string): string {
  cert.sign(forge.pki.privateKeyFromPem(issuerKeyPem) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

export class CertificateAuthority {
  readonly keys: KeyPair;
  readonly certPem: string;
  readonly #subject: forge.pki.CertificateField[];
  readonly #keyIdentifier: string;

  private constructor(keys: KeyPair, certPem: string, subject: forge.pki.CertificateField[]) {
    this.keys = keys;
    this.certPem = certPem;
    this.#subject = subject;
    this.#keyIdentifier = forge.pki.certificateFromPem(certPem).generateSubjectKeyIdentifier().getBytes();
  }

  static async create(commonName: string): Promise<CertificateAuthority> {
    const keys = await newKeyPair();
    const subject = [{ name: "commonName", value: commonName }];
    const cert = baseCertificate(keys, subject, 3650);
    cert.setIssuer(subject);
    cert.setExtensions([
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      { name: "subjectKeyIdentifier" },
    ]);
    return new CertificateAuthority(keys, sign(cert, keys.keyPem), subject);
  }

  async issue(spec: CertSpec): Promise<Issued> {
    const keys = await newKeyPair();
    const subject: forge.pki.CertificateField[] = [
      ...(spec.organizations ?? []).map((o) => ({ name: "organizationName", value: o })),
      { name: "commonName", value: spec.commonName },
    ];
    const cert = baseCertificate(keys, subject, 365);
    cert.setIssuer(this.#subject);
    const altNames = [
      ...(spec.dnsNames ?? []).map((value) => ({ type: 2, value })),
      ...(spec.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
    ];
    cert.setExtensions([
      { name: "basicConstraints", cA: false, critical: true },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      { name: "extKeyUsage", serverAuth: spec.usage === "server", clientAuth: spec.usage === "client" },
      { name: "authorityKeyIdentifier", keyIdentifier: this.#keyIdentifier },
      ...(altNames.length > 0 ? [{ name: "subjectAltName", altNames }] : []),
    ]);
    return { ...keys, certPem: sign(cert, this.keys.keyPem) };
  }
}
