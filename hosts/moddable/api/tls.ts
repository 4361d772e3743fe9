// The module specifier `dormouse/tls` (manifest_dormouse_tls.json): import it once to enable `tls`.
import 'hosts/moddable/dormouse-tls';
