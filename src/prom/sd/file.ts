/** `file_sd_configs` entries (the files themselves are read by src/discovery). */
import { durationField, joinDir, type Problems, unknownKeys } from "../config-fields.ts";
import type { Obj } from "../go-yaml.ts";

const DEFAULT_FILE_SD_REFRESH = 5 * 60_000;
const FILE_SD_PATTERN = /^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$/;

export function parseFileSd(
  item: Obj,
  directory: string,
  path: string,
  p: Problems,
): { files: string[]; refreshIntervalMs: number } | undefined {
  unknownKeys(item, ["files", "refresh_interval"], path, p);
  const files = item.files;
  if (!Array.isArray(files) || files.length === 0) {
    p.add(`${path}.files`, "file_sd_configs needs a non-empty list of files");
    return undefined;
  }
  const resolved: string[] = [];
  files.forEach((f, i) => {
    const name = typeof f === "string" ? f : String(f);
    if (!FILE_SD_PATTERN.test(name)) {
      p.add(
        `${path}.files[${i}]`,
        `"${name}" is not valid for file discovery: use a .json, .yml or .yaml file, with * only in the last path element`,
      );
      return;
    }
    resolved.push(joinDir(directory, name));
  });
  return {
    files: resolved,
    refreshIntervalMs: durationField(item, "refresh_interval", path, p) ?? DEFAULT_FILE_SD_REFRESH,
  };
}
