type Listener = Parameters<EventTarget['addEventListener']>[1]
type AddListenerOptions = Parameters<EventTarget['addEventListener']>[2]
type RemoveListenerOptions = Parameters<EventTarget['removeEventListener']>[2]

/**
 * An EventTarget whose listeners are typed by an event map (`{ 'child:started': CustomEvent<…> }`):
 * `addEventListener('child:started', (e) => e.detail.id)` type-checks without casts.
 */
export class TypedEventTarget<M extends { [K in keyof M]: Event }> extends EventTarget {
  /** Listens to one of this target's events, typed by its event map. */
  override addEventListener<K extends keyof M & string>(
    type: K,
    listener: (event: M[K]) => void,
    options?: AddListenerOptions,
  ): void
  /** Listens to any event by name (untyped). */
  override addEventListener(type: string, listener: Listener, options?: AddListenerOptions): void
  override addEventListener(
    type: string,
    listener: Listener | ((event: never) => void),
    options?: AddListenerOptions,
  ): void {
    super.addEventListener(type, listener as Listener, options)
  }

  /** Removes a listener added for one of this target's events. */
  override removeEventListener<K extends keyof M & string>(
    type: K,
    listener: (event: M[K]) => void,
    options?: RemoveListenerOptions,
  ): void
  /** Removes a listener added by event name (untyped). */
  override removeEventListener(type: string, listener: Listener, options?: RemoveListenerOptions): void
  override removeEventListener(
    type: string,
    listener: Listener | ((event: never) => void),
    options?: RemoveListenerOptions,
  ): void {
    super.removeEventListener(type, listener as Listener, options)
  }
}
