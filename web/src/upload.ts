/** Opening a trace file someone has: pick it from a drop or a file input, checked before it is sent to the
 * server's upload route (which reads it with lmxray's own readers and stores it as a run). */

import { ApiError } from "./api/client";

export const TRACE_SUFFIXES = [".jsonl", ".json", ".safetensors"]; // the server's upload route reads these

/** The one trace file among ``files``: a single file with a suffix the server reads, else an ApiError with the fix. */
export function traceFileOf(files: ArrayLike<File>): File {
  if (files.length !== 1)
    throw new ApiError(0, `drop one trace file, not ${files.length}`, "open one file at a time");
  const file = files[0];
  const lower = file.name.toLowerCase();
  if (!TRACE_SUFFIXES.some((s) => lower.endsWith(s)))
    throw new ApiError(0, `cannot tell the format of ${JSON.stringify(file.name)} from its suffix`,
      "open an lmxray or rocmforge .jsonl trace, or an lmxray .safetensors trace");
  return file;
}

/** Whether a drag carries files (text or links dragged over the page are left to the browser). */
export function carriesFiles(types: readonly string[]): boolean {
  return types.includes("Files");
}
