"""A Jupyter kernel for Java, on ipykernel's kernel base class and JShell.

No Java kernel is packaged by Debian or published on npm (IJava and JJava
are GitHub/Maven releases), but JShell is part of Debian's
openjdk-17-jdk-headless: java/JShellBridge.java evaluates the code in one
long-lived JVM, so variables, methods and classes persist between
executions. Output streams as it is printed; the value of a final
expression is the result (text/plain); an exception is an error named
EvalException (as IJava names them) with the Java exception and its stack
as traceback; a compile error is a CompilationException.

Usage (kernel.json argv): python3 java_kernel.py -f {connection_file}
"""

import ctypes
import os
import signal
import struct
import subprocess

from ipykernel.kernelapp import IPKernelApp
from ipykernel.kernelbase import Kernel

HERE = os.path.dirname(os.path.abspath(__file__))
PR_SET_PDEATHSIG = 1


def _prepare_jvm():
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # ipykernel ignores SIGINT outside handlers; a JVM that starts with it
    # ignored would never see the interrupts forwarded to it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class JavaKernel(Kernel):
    implementation = "opensandbox-java"
    implementation_version = "1.0"
    language = "java"
    language_version = "17"
    language_info = {
        "name": "java",
        "mimetype": "text/x-java-source",
        "file_extension": ".jshell",
    }
    banner = "Java (JShell, OpenSandbox)"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._jvm = None
        self._start()

    def _start(self):
        # Its own session: an interrupt of the kernel's process group must
        # not reach the JVM, which is stopped through JShell instead. So a
        # kill of that group would miss it too: the JVM dies with us
        # (PR_SET_PDEATHSIG), even in the middle of an endless loop.
        self._jvm = subprocess.Popen(
            ["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp",
             os.path.join(HERE, "java"), "JShellBridge"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            start_new_session=True, bufsize=0, preexec_fn=_prepare_jvm)

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self._jvm.stdout.read(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def do_execute(self, code, silent, store_history=True,
                   user_expressions=None, allow_stdin=False):
        if self._jvm is None or self._jvm.poll() is not None:
            self._start()
        data = code.encode("utf-8")
        self._jvm.stdin.write(struct.pack(">I", len(data)) + data)
        self._jvm.stdin.flush()
        error = None
        interrupted = False
        while True:
            try:
                kind = self._read(1)
                size = struct.unpack(">I", self._read(4))[0]
                text = self._read(size).decode("utf-8", "replace")
            except KeyboardInterrupt:
                interrupted = True
                os.kill(self._jvm.pid, signal.SIGINT)
                continue
            except EOFError:
                self._jvm = None
                error = ("JVMExited", "the JVM exited", [])
                break
            if kind == b"d":
                break
            if silent:
                continue
            if kind in (b"o", b"e"):
                self.send_response(self.iopub_socket, "stream", {
                    "name": "stdout" if kind == b"o" else "stderr",
                    "text": text})
            elif kind == b"r":
                self.send_response(self.iopub_socket, "execute_result", {
                    "execution_count": self.execution_count,
                    "data": {"text/plain": text}, "metadata": {}})
            elif kind == b"x":
                lines = text.split("\n")
                error = (lines[0], lines[1] if len(lines) > 1 else "",
                         lines[2:])
        if error is None and interrupted:
            error = ("KeyboardInterrupt", "interrupted", [])
        if error is not None:
            content = {"ename": error[0], "evalue": error[1],
                       "traceback": error[2]}
            self.send_response(self.iopub_socket, "error", content)
            content.update(status="error",
                           execution_count=self.execution_count)
            return content
        return {"status": "ok", "execution_count": self.execution_count,
                "payload": [], "user_expressions": {}}

    def do_shutdown(self, restart):
        if self._jvm is not None and self._jvm.poll() is None:
            self._jvm.kill()
        return {"status": "ok", "restart": restart}


if __name__ == "__main__":
    IPKernelApp.launch_instance(kernel_class=JavaKernel)
