/**
 * RFC 6902 JSON Patch with RFC 6901 pointers, strict as the API server's (evanphx/json-patch):
 * a path into something missing is an error, "-" appends, `test` compares deeply. For the
 * tests only: it applies the webhook's patches the way kube-apiserver would.
 */
import { isDeepStrictEqual } from "node:util";

export type Op =
  | { op: "add" | "replace" | "test"; path: string; value: unknown }
  | { op: "remove"; path: string }
  | { op: "move" | "copy"; from: string; path: string };

export class PatchError extends Error {}

function parse(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new PatchError(`pointer ${JSON.stringify(pointer)} does not start with /`);
  return pointer
    .slice(1)
    .split("/")
    .map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

type Container = Record<string, unknown> | unknown[];

function isContainer(v: unknown): v is Container {
  return v !== null && typeof v === "object";
}

function index(arr: unknown[], token: string, forAdd: boolean): number {
  if (forAdd && token === "-") return arr.length;
  if (!/^(0|[1-9]\d*)$/.test(token)) throw new PatchError(`"${token}" is not an array index`);
  const i = Number(token);
  if (i > arr.length || (!forAdd && i === arr.length)) throw new PatchError(`index ${i} is out of range`);
  return i;
}

function parentOf(doc: unknown, tokens: string[]): [Container, string] {
  let cur: unknown = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[index(cur, t, false)];
    else if (isContainer(cur) && Object.hasOwn(cur, t)) cur = (cur as Record<string, unknown>)[t];
    else throw new PatchError(`path member "${t}" does not exist`);
  }
  if (!isContainer(cur)) throw new PatchError("parent is not an object or array");
  return [cur, tokens[tokens.length - 1]!];
}

function get(doc: unknown, pointer: string): unknown {
  const tokens = parse(pointer);
  if (tokens.length === 0) return doc;
  const [parent, last] = parentOf(doc, tokens);
  if (Array.isArray(parent)) return parent[index(parent, last, false)];
  if (!Object.hasOwn(parent, last)) throw new PatchError(`${pointer} does not exist`);
  return (parent as Record<string, unknown>)[last];
}

function add(doc: unknown, pointer: string, value: unknown): unknown {
  const tokens = parse(pointer);
  if (tokens.length === 0) return value;
  const [parent, last] = parentOf(doc, tokens);
  if (Array.isArray(parent)) parent.splice(index(parent, last, true), 0, value);
  else Object.defineProperty(parent, last, { value, enumerable: true, writable: true, configurable: true });
  return doc;
}

function remove(doc: unknown, pointer: string): unknown {
  const tokens = parse(pointer);
  if (tokens.length === 0) throw new PatchError("cannot remove the whole document");
  const [parent, last] = parentOf(doc, tokens);
  if (Array.isArray(parent)) parent.splice(index(parent, last, false), 1);
  else {
    if (!Object.hasOwn(parent, last)) throw new PatchError(`${pointer} does not exist`);
    delete (parent as Record<string, unknown>)[last];
  }
  return doc;
}

/** Applies `ops` to a deep copy of `doc` and returns it; throws PatchError like the API server would refuse. */
export function applyPatch<T>(doc: T, ops: readonly Op[]): T {
  let out: unknown = structuredClone(doc);
  for (const op of ops) {
    switch (op.op) {
      case "add":
        out = add(out, op.path, structuredClone(op.value));
        break;
      case "remove":
        out = remove(out, op.path);
        break;
      case "replace":
        get(out, op.path);
        out = add(remove(out, op.path), op.path, structuredClone(op.value));
        break;
      case "test":
        if (!isDeepStrictEqual(get(out, op.path), op.value)) throw new PatchError(`test failed at ${op.path}`);
        break;
      case "move": {
        const v = get(out, op.from);
        out = add(remove(out, op.from), op.path, v);
        break;
      }
      case "copy":
        out = add(out, op.path, structuredClone(get(out, op.from)));
        break;
      default:
        throw new PatchError(`unknown op ${(op as { op: string }).op}`);
    }
  }
  return out as T;
}
