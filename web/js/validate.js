// Client-side validation that mirrors schemas/data.v1.json: both fields required strings
// of 1 to 1024 characters. JSON Schema counts characters as Unicode code points, so this
// does too (an emoji is one character here, as it is for the server).

export const MIN_LENGTH = 1;
export const MAX_LENGTH = 1024;

export const FIELDS = {
  informationOne: 'Information one',
  informationTwo: 'Information two',
};

export function charCount(value) {
  return [...value].length;
}

/** The message for one field, or null when it is valid. */
export function validateField(name, value) {
  const label = FIELDS[name];
  if (typeof value !== 'string' || value.length === 0) return `${label} is required.`;
  const n = charCount(value);
  if (n < MIN_LENGTH) return `${label} must be at least ${MIN_LENGTH} character.`;
  if (n > MAX_LENGTH) return `${label} must be at most ${MAX_LENGTH} characters; it has ${n}.`;
  return null;
}

/** {field: message} for every invalid field; empty when the whole body is valid. */
export function validateData(data) {
  const errors = {};
  for (const name of Object.keys(FIELDS)) {
    const message = validateField(name, data[name]);
    if (message) errors[name] = message;
  }
  return errors;
}

/** The local sign-in's user name, as the local token endpoint accepts it. */
export function validateUserName(value) {
  if (!value.trim()) return 'Enter a user name.';
  if (charCount(value) > 256) return 'A user name is at most 256 characters.';
  return null;
}
