/**
 * Certificate rotation as a state machine over what is stored: no I/O here, and the clock is
 * an argument. Each run of `promshard certs` loads the state, advances it as far as the time
 * allows, and stores it; a run that dies midway is finished by the next one.
 *
 * The API server trusts the bundle in the webhook configuration's caBundle; the webhook serves
 * the certificate in its files. The two change at different moments (the API server watches
 * the configuration, the kubelet refreshes a Secret volume within a minute or two), so a CA
 * is never swapped in one step:
 *
 *   1. add:     a new CA is created and added to the bundle; the old one still signs.
 *   2. promote: after `overlap`, the new CA signs a new serving certificate; the old CA stays
 *               in the bundle ("retired"), so the certificate still being served is trusted.
 *   3. drop:    after another `overlap`, retired CAs leave the bundle.
 *
 * At every moment the certificate the webhook serves chains to a CA in the bundle. A serving
 * certificate renewed under the same CA needs no such care: it is replaced at once.
 */
import { randomBytes } from "node:crypto";
import { createCA, describeCert, type Issued, issueServing, type KeyGenerator, signedBy } from "./certs.ts";

export interface CertState {
  /** The CA that signs serving certificates. */
  ca?: Issued;
  /** A CA in the bundle that does not sign yet, since `since`. */
  nextCa?: Issued & { since: Date };
  /** Former CAs still in the bundle, since `retiredSince`. */
  retired: string[];
  retiredSince?: Date;
  serving?: Issued;
  /** The bundle as last stored next to the serving certificate (read back, never computed here). */
  storedBundle?: string;
}

export interface RotationPolicy {
  commonName: string;
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
  caValidityMs: number;
  certValidityMs: number;
  /** Start replacing the CA when it has less than this left. */
  caRenewBeforeMs: number;
  /** Renew the serving certificate when it has less than this left. */
  certRenewBeforeMs: number;
  /** How long each CA change waits for the API server and the webhook to catch up. */
  overlapMs: number;
  keyGenerator?: KeyGenerator;
}

export type StepName = "create-ca" | "add-ca" | "promote-ca" | "drop-retired-ca" | "issue-serving";

export interface Step {
  step: StepName;
  reason: string;
}

export interface RotationResult {
  state: CertState;
  steps: Step[];
  /** The next moment a run has something to do. */
  nextRun: Date;
}

/** What the API server must trust: the signing CA, the next one, the retired ones. */
export function bundleOf(state: CertState): string {
  return [state.ca?.certPem, state.nextCa?.certPem, ...state.retired].filter((p): p is string => !!p).join("");
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const s = new Set(a);
  return a.length === b.length && b.every((x) => s.has(x));
}

export interface Force {
  /** Start a CA rotation now (it still goes through add, promote and drop). */
  ca?: boolean;
  /** Issue a new serving certificate now. */
  cert?: boolean;
}

/** Advances `state` as far as `now` allows. */
export async function rotate(
  state: CertState,
  policy: RotationPolicy,
  now: Date,
  force: Force = {},
): Promise<RotationResult> {
  const s: CertState = { ...state, retired: [...state.retired] };
  const steps: Step[] = [];
  const t = now.getTime();
  const newCA = () =>
    createCA({
      // Unique, so that the old and the new CA in one bundle are told apart by name too.
      commonName: `promshard-ca-${now.toISOString().replace(/[-:]|\.\d+/g, "")}-${randomBytes(3).toString("hex")}`,
      validityMs: policy.caValidityMs,
      now,
      keyGenerator: policy.keyGenerator,
    });
  let forceCa = force.ca === true;
  let forceCert = force.cert === true;

  for (let round = 0; round < 6; round++) {
    const before = steps.length;
    const caInfo = s.ca ? safeDescribe(s.ca.certPem) : undefined;
    if (!s.ca || !caInfo || caInfo.notAfter.getTime() <= t) {
      // Nothing trusted to build on (first run, or a CA already expired): start afresh.
      const why = !s.ca ? "no CA yet" : !caInfo ? "the stored CA does not parse" : "the CA has expired";
      s.ca = await newCA();
      s.nextCa = undefined;
      s.retired = [];
      s.retiredSince = undefined;
      s.serving = undefined;
      steps.push({ step: "create-ca", reason: why });
      forceCa = false;
    } else if (s.nextCa && t - s.nextCa.since.getTime() >= policy.overlapMs) {
      s.retired = [s.ca.certPem, ...s.retired];
      s.retiredSince = now;
      s.ca = { certPem: s.nextCa.certPem, keyPem: s.nextCa.keyPem };
      s.nextCa = undefined;
      steps.push({ step: "promote-ca", reason: "the new CA has been in the bundle for the overlap" });
    } else if (
      s.retired.length > 0 &&
      (!s.retiredSince || t - s.retiredSince.getTime() >= policy.overlapMs) &&
      !steps.some((x) => x.step === "promote-ca")
    ) {
      s.retired = [];
      s.retiredSince = undefined;
      steps.push({ step: "drop-retired-ca", reason: "the new serving certificate has been out for the overlap" });
    } else if (!s.nextCa && (forceCa || caInfo.notAfter.getTime() - t <= policy.caRenewBeforeMs)) {
      s.nextCa = { ...(await newCA()), since: now };
      steps.push({
        step: "add-ca",
        reason: forceCa ? "rotation asked for" : `the CA expires ${caInfo.notAfter.toISOString()}`,
      });
      forceCa = false;
    }
    // The serving certificate follows the signing CA and the names asked for.
    const serving = s.serving ? safeDescribe(s.serving.certPem) : undefined;
    const reason = !s.serving
      ? "no serving certificate yet"
      : !serving
        ? "the stored serving certificate does not parse"
        : !signedBy(s.serving.certPem, s.ca!.certPem)
          ? "it is not signed by the signing CA"
          : !sameSet(serving.dnsNames, policy.dnsNames) || !sameSet(serving.ipAddresses, policy.ipAddresses)
            ? "its names differ from the ones asked for"
            : serving.notAfter.getTime() - t <= policy.certRenewBeforeMs
              ? `it expires ${serving.notAfter.toISOString()}`
              : forceCert
                ? "renewal asked for"
                : undefined;
    if (reason) {
      s.serving = await issueServing(s.ca!, {
        commonName: policy.commonName,
        dnsNames: policy.dnsNames,
        ipAddresses: policy.ipAddresses,
        validityMs: policy.certValidityMs,
        now,
        keyGenerator: policy.keyGenerator,
      });
      steps.push({ step: "issue-serving", reason });
      forceCert = false;
    }
    if (steps.length === before) break;
  }

  const due: number[] = [];
  const caInfo = describeCert(s.ca!.certPem);
  if (s.nextCa) due.push(s.nextCa.since.getTime() + policy.overlapMs);
  else due.push(caInfo.notAfter.getTime() - policy.caRenewBeforeMs);
  if (s.retired.length > 0) due.push((s.retiredSince?.getTime() ?? t) + policy.overlapMs);
  due.push(describeCert(s.serving!.certPem).notAfter.getTime() - policy.certRenewBeforeMs);
  return { state: s, steps, nextRun: new Date(Math.max(t, Math.min(...due))) };
}

function safeDescribe(pem: string) {
  try {
    return describeCert(pem);
  } catch {
    return undefined;
  }
}
