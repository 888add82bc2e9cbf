import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
const ext = process.argv[2];
const mp = await loadMicroPython({ stdout: (l) => console.log(l), stderr: (l) => console.error(l) });
mp.FS.mkdir("/lib"); mp.FS.mkdir("/lib/schema"); mp.FS.mkdir("/lib/device");
const src = ext === "mpy" ? "/tmp/mpyprobe" : "/work/wt-micro";
for (const d of ["schema","device"]) for (const f of fs.readdirSync(src+"/"+d)) if (f.endsWith(".py")||f.endsWith(".mpy")) mp.FS.writeFile("/lib/"+d+"/"+f, fs.readFileSync(src+"/"+d+"/"+f));
mp.runPython(`
import sys, gc
sys.path.insert(0, '/lib')
gc.collect(); last = gc.mem_alloc(); first = last
for name in ('schema.errors','schema.topics','schema.jsonschema','schema.messages','device.screen','device.ledger','device.storage','device.controller'):
    __import__(name)
    gc.collect(); now = gc.mem_alloc(); print(name, now - last); last = now
print('total import', last - first)
`);
