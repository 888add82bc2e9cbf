import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
const mp = await loadMicroPython({ stdout: (l) => console.log(l), stderr: (l) => console.error(l) });
mp.runPython(`
import gc
gc.collect(); print(gc.mem_alloc())
x = [bytearray(100) for i in range(1000)]
x = None
gc.collect(); print('same call', gc.mem_alloc())
`);
mp.runPython(`gc.collect(); print('next call', gc.mem_alloc())`);
mp.runPython(`print('after', gc.mem_alloc())`);
const r = mp.runPythonAsync(`
import asyncio
y = [bytearray(100) for i in range(1000)]
y = None
gc.collect(); print('async', gc.mem_alloc())
`);
await r;
