// PkixCheck runs Java's PKIX CertPathValidator (the JDK's own, "SUN" provider) over PEM files
// so the test suite can check Signet's chains and revocation services against the verifier every
// Java TLS client uses. JDK only, no build step:
//
//   java test/interop/PkixCheck.java --root root.pem [--root …] [--intermediate int.pem …]
//       --leaf leaf.pem [--revocation ocsp|crl|off] [--eku server|client|any]
//
// The path is the leaf followed by the intermediates (leaf-most first); the roots are the trust
// anchors. Revocation is ON unless --revocation off: a PKIXRevocationChecker checks every
// certificate of the path except the anchor, by the URLs in the certificates themselves:
//   ocsp (default): OCSP at the AIA responder URL, NO_FALLBACK. A CRL fallback would hide a
//                   broken OCSP answer (the JDK quietly takes the CRL instead), and OCSP is what
//                   this mode is meant to test; `crl` tests the CRLs separately.
//   crl:            the CRL at the CRL distribution point (com.sun.security.enableCRLDP),
//                   PREFER_CRLS with NO_FALLBACK, for the same reason the other way round.
// Either way a status that cannot be determined is a failure (no SOFT_FAIL).
//
// Prints "VALID" and exits 0, or "INVALID reason=<CertPathValidatorException reason> index=<i>:
// <message>" and exits 1; a usage or file error exits 2.
import java.io.FileInputStream;
import java.io.InputStream;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.PKIXRevocationChecker;
import java.security.cert.TrustAnchor;
import java.security.cert.X509CertSelector;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

public class PkixCheck {
  private static final String SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
  private static final String CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

  public static void main(String[] args) {
    try {
      System.exit(run(args));
    } catch (UsageError e) {
      System.err.println("usage error: " + e.getMessage());
      System.exit(2);
    } catch (Exception e) {
      System.err.println("harness error: " + e);
      System.exit(2);
    }
  }

  static final class UsageError extends Exception {
    UsageError(String m) {
      super(m);
    }
  }

  static List<X509Certificate> read(CertificateFactory cf, String file) throws Exception {
    List<X509Certificate> out = new ArrayList<>();
    try (InputStream in = new FileInputStream(file)) {
      Collection<? extends java.security.cert.Certificate> all = cf.generateCertificates(in);
      for (java.security.cert.Certificate c : all) out.add((X509Certificate) c);
    }
    if (out.isEmpty()) throw new UsageError("no certificate in " + file);
    return out;
  }

  static int run(String[] args) throws Exception {
    List<String> roots = new ArrayList<>();
    List<String> inters = new ArrayList<>();
    String leaf = null;
    String revocation = "ocsp";
    String eku = "server";
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (i + 1 >= args.length) throw new UsageError(a + " needs a value");
      String v = args[++i];
      switch (a) {
        case "--root" -> roots.add(v);
        case "--intermediate" -> inters.add(v);
        case "--leaf" -> leaf = v;
        case "--revocation" -> revocation = v;
        case "--eku" -> eku = v;
        default -> throw new UsageError("unknown option " + a);
      }
    }
    if (roots.isEmpty() || leaf == null) throw new UsageError("--root and --leaf are required");
    if (!Set.of("ocsp", "crl", "off").contains(revocation)) throw new UsageError("--revocation ocsp|crl|off");
    if (!Set.of("server", "client", "any").contains(eku)) throw new UsageError("--eku server|client|any");

    // Before any CertPathValidator is created: the JDK reads this once.
    if (revocation.equals("crl")) System.setProperty("com.sun.security.enableCRLDP", "true");

    CertificateFactory cf = CertificateFactory.getInstance("X.509");
    Set<TrustAnchor> anchors = new HashSet<>();
    for (String r : roots) for (X509Certificate c : read(cf, r)) anchors.add(new TrustAnchor(c, null));
    List<X509Certificate> path = new ArrayList<>(read(cf, leaf));
    if (path.size() != 1) throw new UsageError(leaf + " must hold exactly one certificate");
    for (String f : inters) path.addAll(read(cf, f));

    CertPath cp = cf.generateCertPath(path);
    CertPathValidator validator = CertPathValidator.getInstance("PKIX");
    PKIXParameters params = new PKIXParameters(anchors);
    if (!eku.equals("any")) {
      X509CertSelector target = new X509CertSelector();
      target.setExtendedKeyUsage(Set.of(eku.equals("server") ? SERVER_AUTH : CLIENT_AUTH));
      params.setTargetCertConstraints(target);
    }
    if (revocation.equals("off")) {
      params.setRevocationEnabled(false);
    } else {
      params.setRevocationEnabled(true);
      PKIXRevocationChecker rc = (PKIXRevocationChecker) validator.getRevocationChecker();
      rc.setOptions(
          revocation.equals("crl")
              ? EnumSet.of(PKIXRevocationChecker.Option.PREFER_CRLS, PKIXRevocationChecker.Option.NO_FALLBACK)
              : EnumSet.of(PKIXRevocationChecker.Option.NO_FALLBACK));
      params.addCertPathChecker(rc);
    }
    try {
      validator.validate(cp, params);
      System.out.println("VALID");
      return 0;
    } catch (CertPathValidatorException e) {
      Throwable cause = e.getCause();
      System.out.println(
          "INVALID reason="
              + e.getReason()
              + " index="
              + e.getIndex()
              + ": "
              + e.getMessage()
              + (cause != null && cause.getMessage() != null && !cause.getMessage().equals(e.getMessage()) ? " (" + cause.getMessage() + ")" : ""));
      return 1;
    }
  }
}
