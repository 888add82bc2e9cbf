// Runs Python code on MicroPython (the WebAssembly port) with a directory's
// files in its filesystem: node run.mjs DIR CODE [CODE ...]
// DIR is copied to /lib (put first on sys.path); each CODE runs in __main__ as
// its own top-level call, with a gc.collect() call between two of them: this
// port frees garbage only between top-level calls, never during one.
// Python's output goes to stdout; an uncaught Python exception exits with 1.
import fs from "node:fs";
import path from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const [dir, ...chunks] = process.argv.slice(2);
if (!dir || chunks.length === 0) {
  console.error("usage: node run.mjs DIR CODE [CODE ...]");
  process.exit(2);
}
const mp = await loadMicroPython({
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});

function copy(from, to) {
  mp.FS.mkdir(to);
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    if (entry.isDirectory()) copy(source, to + "/" + entry.name);
    else mp.FS.writeFile(to + "/" + entry.name, fs.readFileSync(source));
  }
}
copy(dir, "/lib");
mp.FS.mkdir("/flash");

try {
  mp.runPython("import gc, sys\nsys.path.insert(0, '/lib')");
  for (const code of chunks) {
    mp.runPython("gc.collect()");
    mp.runPython(code);
  }
} catch (error) {
  process.stderr.write(String(error.message || error) + "\n");
  process.exit(1);
}
