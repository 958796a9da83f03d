/** A Setting row: a small key/value fact about this installation (e.g. the audit head, a start-up marker). */
export interface SettingRecord {
  key: string;
  value: string;
}
