"""A Jupyter kernel for bash, on ipykernel's kernel base class.

Debian packages no bash kernel (bash_kernel is on PyPI only), so the
code-interpreter image carries this one. One long-lived bash per kernel
keeps variables, functions and the working directory between executions.
Each execution is written to a file and sourced (stdin is /dev/null);
a marker line printed after it carries the exit status. Output streams as
it arrives; a non-zero status is reported as an error whose value is the
status, as execd reports failed commands.

Usage (kernel.json argv): python3 bash_kernel.py -f {connection_file}
"""

import os
import select
import signal
import subprocess
import tempfile
import uuid

from ipykernel.kernelapp import IPKernelApp
from ipykernel.kernelbase import Kernel


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class BashKernel(Kernel):
    implementation = "opensandbox-bash"
    implementation_version = "1.0"
    language = "bash"
    language_version = "5"
    language_info = {
        "name": "bash",
        "mimetype": "text/x-sh",
        "file_extension": ".sh",
    }
    banner = "bash (OpenSandbox)"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._shell = None
        self._token = uuid.uuid4().hex
        self._dir = tempfile.mkdtemp(prefix="bash-kernel-")
        self._start_shell()

    def _start_shell(self):
        # A trap (not an ignore, which children would inherit) keeps an
        # interrupted shell alive while its foreground child gets SIGINT.
        # ipykernel ignores SIGINT outside its handlers: a shell started
        # with it ignored could not trap it, and its children would ignore
        # every interrupt, so it is reset first.
        self._shell = subprocess.Popen(
            ["bash", "--norc", "--noprofile"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            bufsize=0,
            preexec_fn=_default_sigint,
        )
        self._shell.stdin.write(b"trap 'true' INT\n")
        self._shell.stdin.flush()

    def _stream(self, name, data):
        text = data.decode("utf-8", "replace")
        if text:
            self.send_response(self.iopub_socket, "stream",
                               {"name": name, "text": text})

    def do_execute(self, code, silent, store_history=True,
                   user_expressions=None, allow_stdin=False):
        if self._shell is None or self._shell.poll() is not None:
            self._start_shell()
        path = os.path.join(self._dir, "cell.sh")
        with open(path, "w") as f:
            f.write(code)
            f.write("\n")
        marker = ("\x1e" + self._token + " ").encode()
        self._shell.stdin.write(
            ("source %s < /dev/null; printf '\\036%%s %%d\\n' %s $?\n"
             % (path, self._token)).encode())
        self._shell.stdin.flush()
        out_fd = self._shell.stdout.fileno()
        err_fd = self._shell.stderr.fileno()
        pending = b""
        status = None
        interrupted = False
        while status is None:
            try:
                ready, _, _ = select.select([out_fd, err_fd], [], [])
            except KeyboardInterrupt:
                interrupted = True
                os.killpg(self._shell.pid, signal.SIGINT)
                continue
            if err_fd in ready:
                chunk = os.read(err_fd, 65536)
                if not silent:
                    self._stream("stderr", chunk)
            if out_fd not in ready:
                continue
            chunk = os.read(out_fd, 65536)
            if not chunk:
                status = -1  # the shell exited (`exit` in the code)
                break
            pending += chunk
            at = pending.find(marker)
            if at >= 0:
                end = pending.find(b"\n", at)
                if end < 0:
                    continue
                status = int(pending[at + len(marker):end] or b"0")
                out, pending = pending[:at], b""
            else:
                # Hold back what could be the start of a marker.
                keep = len(marker) - 1
                cut = max(len(pending) - keep, 0)
                out, pending = pending[:cut], pending[cut:]
            if out and not silent:
                self._stream("stdout", out)
        # What stderr still holds belongs to this execution.
        while select.select([err_fd], [], [], 0)[0]:
            chunk = os.read(err_fd, 65536)
            if not chunk:
                break
            if not silent:
                self._stream("stderr", chunk)
        if status == -1:
            code = self._shell.wait()
            self._shell = None
            status = code if code else 0
            if status == 0:
                return self._ok()
        if interrupted:
            return self._error("KeyboardInterrupt", "interrupted", [])
        if status != 0:
            return self._error("CommandExecError", str(status),
                               ["exit status %d" % status])
        return self._ok()

    def _ok(self):
        return {"status": "ok", "execution_count": self.execution_count,
                "payload": [], "user_expressions": {}}

    def _error(self, ename, evalue, traceback):
        content = {"ename": ename, "evalue": evalue, "traceback": traceback}
        self.send_response(self.iopub_socket, "error", content)
        content.update(status="error", execution_count=self.execution_count)
        return content

    def do_shutdown(self, restart):
        if self._shell is not None and self._shell.poll() is None:
            os.killpg(self._shell.pid, signal.SIGKILL)
        return {"status": "ok", "restart": restart}


if __name__ == "__main__":
    IPKernelApp.launch_instance(kernel_class=BashKernel)
