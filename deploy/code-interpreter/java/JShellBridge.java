// The Java side of the code-interpreter image's Java kernel
// (../java_kernel.py): evaluates code with JShell (jdk.jshell, part of
// Debian's openjdk-17-jdk-headless) and reports over stdin/stdout.
//
// Requests (stdin): 4-byte big-endian length, then UTF-8 code.
// Replies (stdout): 1 type byte, 4-byte big-endian length, UTF-8 payload:
//   'o' / 'e'  output the snippets wrote to System.out / System.err
//   'r'        the value of a final expression
//   'x'        an error: name, value and traceback lines, separated by '\n'
//              (name and value first)
//   'd'        the request is done
// SIGINT stops the running snippet (JShell.stop()).

import java.io.DataInputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.stream.Collectors;

import jdk.jshell.Diag;
import jdk.jshell.EvalException;
import jdk.jshell.JShell;
import jdk.jshell.JShellException;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;
import jdk.jshell.UnresolvedReferenceException;

public final class JShellBridge {
  private static final OutputStream wire =
      new FileOutputStream(FileDescriptor.out);

  static synchronized void send(char type, String text) {
    byte[] b = text.getBytes(StandardCharsets.UTF_8);
    try {
      wire.write(type);
      wire.write(new byte[] {(byte) (b.length >>> 24), (byte) (b.length >>> 16),
                             (byte) (b.length >>> 8), (byte) b.length});
      wire.write(b);
      wire.flush();
    } catch (IOException e) {
      System.exit(0); // the kernel is gone
    }
  }

  /** Forwards what snippets print, as 'o' or 'e' messages. */
  static final class Forward extends OutputStream {
    private final char type;

    Forward(char type) {
      this.type = type;
    }

    @Override
    public void write(int b) {
      write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] b, int off, int len) {
      if (len > 0)
        send(type, new String(b, off, len, StandardCharsets.UTF_8));
    }
  }

  private static String trace(JShellException e) {
    StringBuilder sb = new StringBuilder();
    String cls = e instanceof EvalException
        ? ((EvalException) e).getExceptionClassName() : e.getClass().getName();
    sb.append(cls).append(": ").append(e.getMessage());
    for (StackTraceElement f : e.getStackTrace())
      sb.append('\n').append("\tat ").append(f);
    return sb.toString();
  }

  public static void main(String[] args) throws Exception {
    PrintStream out = new PrintStream(new Forward('o'), true, "UTF-8");
    PrintStream err = new PrintStream(new Forward('e'), true, "UTF-8");
    System.setOut(out);
    System.setErr(err);
    // Local execution: snippets run in this JVM (one JVM, a faster start).
    JShell js = JShell.builder().executionEngine("local").out(out).err(err)
        .build();
    sun.misc.Signal.handle(new sun.misc.Signal("INT"), s -> js.stop());
    SourceCodeAnalysis sca = js.sourceCodeAnalysis();
    DataInputStream in = new DataInputStream(System.in);
    for (;;) {
      int n;
      try {
        n = in.readInt();
      } catch (IOException e) {
        System.exit(0); // the kernel closed our stdin
        return;
      }
      byte[] buf = new byte[n];
      in.readFully(buf);
      run(js, sca, new String(buf, StandardCharsets.UTF_8));
      out.flush();
      err.flush();
      send('d', "");
    }
  }

  private static void run(JShell js, SourceCodeAnalysis sca, String code) {
    String rest = code;
    String value = null;
    while (!rest.isBlank()) {
      SourceCodeAnalysis.CompletionInfo ci = sca.analyzeCompletion(rest);
      if (!ci.completeness().isComplete()) {
        send('x', "CompilationException\nincomplete code: " + rest.strip());
        return;
      }
      rest = ci.remaining();
      value = null;
      for (SnippetEvent ev : js.eval(ci.source())) {
        if (ev.causeSnippet() != null)
          continue; // an update of a dependent snippet
        Snippet s = ev.snippet();
        if (ev.status() == Snippet.Status.REJECTED) {
          List<Diag> diags = js.diagnostics(s).collect(Collectors.toList());
          String msg = diags.stream()
              .map(d -> d.getMessage(null))
              .collect(Collectors.joining("; "));
          send('x', "CompilationException\n" + msg + "\n" + s.source());
          return;
        }
        JShellException ex = ev.exception();
        if (ex != null) {
          String name = ex instanceof UnresolvedReferenceException
              ? "UnresolvedReferenceException" : "EvalException";
          send('x', name + "\n" + ex.getMessage() + "\n" + trace(ex));
          return;
        }
        Snippet.SubKind k = s.subKind();
        if (ev.value() != null
            && (k == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND
                || k == Snippet.SubKind.OTHER_EXPRESSION_SUBKIND
                || k == Snippet.SubKind.VAR_VALUE_SUBKIND))
          value = ev.value();
      }
    }
    if (value != null)
      send('r', value);
  }
}
