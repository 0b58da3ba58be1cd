"Run a console script of the package in-process, as the tests of its commands do."
import contextlib, io


def run(cmd, argv):
    "Run a console script in-process: (exit status, stdout, stderr)."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: cmd.main([str(a) for a in argv]); code = 0
        except SystemExit as e: code = e.code
    return code, out.getvalue(), err.getvalue()
