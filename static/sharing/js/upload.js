/* The upload panel of a folder page.
 *
 * Uppy does the uploading: its AwsS3 plugin sends big files in parts (resumable after a reload
 * through Golden Retriever, after a dropped connection through its retries) and small ones in
 * one PUT. This script connects it to the portal, which starts, signs, completes and aborts
 * every upload itself, and draws one row per file with progress, speed, cancel and retry.
 */
;(() => {
  'use strict'

  const panel = document.getElementById('upload-panel')
  const configNode = document.getElementById('upload-config')
  if (!panel || !configNode || !window.Uppy) return

  const config = JSON.parse(configNode.textContent)
  const { Uppy, AwsS3, DropTarget, GoldenRetriever } = window.Uppy
  const MIN_PART = 5 * 1024 * 1024 // S3's smallest part, and Uppy's threshold for parts
  const SINGLE_PREFIX = 'put:' // upload ids the portal gives to one-request uploads
  const CONTENT_TYPE = /^[\x20-\x7e]{1,255}$/
  const FLASH_KEY = `${config.storeId}:flash`
  const SPEED_WINDOW_MS = 500
  const RELOAD_DELAY_MS = 800

  const $ = (selector) => panel.querySelector(selector)
  const list = $('[data-upload-list]')
  const summary = $('[data-upload-summary]')
  const warnings = $('[data-upload-warnings]')
  const aclSelect = $('[data-upload-acl]')
  const cancelAll = $('[data-upload-cancel-all]')
  const refresh = $('[data-upload-refresh]')

  const rows = new Map() // file id -> row element
  const speeds = new Map() // file id -> { bytes, time, speed }
  const finishedAt = new Map() // file id -> when its bytes were all sent (for the average speed)
  const finished = new Set() // portal upload ids completed (nothing left to abort)
  const notes = new Map() // file id -> { name, message }: refused or skipped files, kept visible
  const flash = sessionStorage.getItem(FLASH_KEY) || '' // what the batch before a reload did

  // --- The portal ------------------------------------------------------------------------

  class PortalError extends Error {
    constructor (message, status, code) {
      super(message)
      this.status = status
      this.code = code
    }
  }

  async function api (url, body) {
    let response
    try {
      response = await fetch(url, {
        method: 'POST',
        credentials: 'same-origin',
        redirect: 'manual', // a redirect means the session ended (to the login page)
        headers: {
          Accept: 'application/json',
          'Content-Type': 'application/json',
          'X-CSRFToken': config.csrfToken,
        },
        body: JSON.stringify(body),
      })
    } catch {
      throw new PortalError('The portal cannot be reached; check the connection and retry.', 0)
    }
    if (response.type === 'opaqueredirect') {
      throw new PortalError('Your session has ended: log in again, then retry.', 401)
    }
    const data = await response.json().catch(() => null)
    if (!response.ok) {
      const message = (data && data.error) || `The portal answered ${response.status}.`
      throw new PortalError(message, response.status, response.headers.get('x-amz-error-code'))
    }
    return data
  }

  function abortQuietly (uploadId) {
    if (!uploadId || finished.has(uploadId)) return
    // Best effort: what the portal cannot abort now, its clean-up command aborts later.
    api(config.urls.abort, { uploadId }).catch(() => {})
  }

  function fileByUpload (uploadId) {
    return uppy.getFiles().find((file) =>
      file.meta.portalUpload === uploadId || file.s3Multipart?.uploadId === uploadId)
  }

  // Uppy's S3 client asks for a URL before each request it would send to S3. It wants absolute
  // URLs; the portal's own (answers, proxied parts) are relative.
  async function signRequest (request) {
    const signed = await sign(request)
    return { ...signed, url: new URL(signed.url, window.location.href).href }
  }

  async function sign ({ method, key, uploadId, partNumber }) {
    if (!uploadId && (method === 'POST' || method === 'PUT')) {
      return start(key, method === 'POST') // `key` is the Uppy file id (generateObjectKey)
    }
    if (method === 'PUT') {
      const { url } = await api(config.urls.sign, { uploadId, part: partNumber })
      return { url }
    }
    if (method === 'GET') {
      return { url: `${config.urls.parts}?${new URLSearchParams({ uploadId })}` }
    }
    if (method === 'POST') return complete(uploadId)
    // DELETE: the portal already aborts every removed file (see 'file-removed').
    throw new Error('The portal aborts cancelled uploads itself.')
  }

  async function start (fileId, multipart) {
    const file = uppy.getFile(fileId)
    if (!file) throw new DOMException('The file was removed.', 'AbortError')
    // A retried one-request upload starts afresh: its earlier attempt is dropped.
    abortQuietly(file.meta.portalUpload)
    const started = await api(config.urls.create, {
      key: file.meta.portalKey,
      size: file.size,
      type: file.type || 'application/octet-stream',
      acl: file.meta.portalAcl,
      overwrite: file.meta.portalOverwrite === true,
      multipart,
    })
    if (!uppy.getFile(fileId)) {
      abortQuietly(started.uploadId) // cancelled while the portal was starting it
      throw new DOMException('The file was removed.', 'AbortError')
    }
    uppy.setFileMeta(fileId, { portalUpload: started.uploadId })
    // The portal started the upload; Uppy reads the new upload id from the answer URL.
    return { url: multipart ? started.answerUrl : started.url, key: started.key }
  }

  async function complete (uploadId) {
    const file = fileByUpload(uploadId)
    try {
      const done = await api(config.urls.complete, {
        uploadId,
        overwrite: file?.meta.portalOverwrite === true,
      })
      finished.add(uploadId)
      if (file) noteResult(file.id, done)
      return { url: done.answerUrl }
    } catch (error) {
      if (file && error.status >= 400 && error.status < 500 && error.code !== 'PartsMissing') {
        // The upload is over on the portal's side: a retry must start a new one.
        uppy.setFileState(file.id, { s3Multipart: undefined })
        uppy.setFileMeta(file.id, { portalUpload: null })
      }
      throw error
    }
  }

  function noteResult (fileId, done) {
    if (done.warning) showWarning(`${done.key}: ${done.warning}`)
    uppy.setFileMeta(fileId, { portalPublic: done.public })
  }

  // --- Uppy ----------------------------------------------------------------------------------

  const uppy = new Uppy({
    id: config.storeId,
    autoProceed: true,
    restrictions: { maxFileSize: config.maxBytes },
    onBeforeFileAdded: (file) => {
      if (!CONTENT_TYPE.test(file.type || '')) file.type = 'application/octet-stream'
      return true
    },
  })

  const partSize = (size) => Math.max(config.partBytes, MIN_PART, Math.ceil(size / config.maxParts))

  uppy.use(AwsS3, {
    id: 'PortalS3',
    shouldUseMultipart: true, // in parts whenever Uppy allows it (files over 5 MiB)
    getChunkSize: (file) => partSize(file.size), // the portal signs each part for this length
    generateObjectKey: (file) => file.id, // the portal answers the real key when it starts
    limit: 4,
    signRequest,
  })
  uppy.use(DropTarget, { target: panel })
  uppy.on('restored', showRestore)
  uppy.use(GoldenRetriever, { expires: 24 * 60 * 60 * 1000 })

  // Before uploading a batch: the portal checks every name and says which already exist.
  uppy.addPreProcessor(async (fileIDs) => {
    const fresh = fileIDs.map((id) => uppy.getFile(id)).filter((f) => f && !f.meta.portalKey)
    if (fresh.length === 0) return
    if (fresh.length > config.maxFiles) {
      const message = `At most ${config.maxFiles} files can be uploaded at once.`
      fresh.forEach((file) => refuse(file, message))
      return
    }
    let answer
    try {
      answer = await api(config.urls.prepare, {
        prefix: config.prefix,
        files: fresh.map((f) => ({ id: f.id, path: f.meta.relativePath || f.name, size: f.size })),
      })
    } catch (error) {
      fresh.forEach((file) => refuse(file, error.message))
      return
    }
    answer.warnings.forEach(showWarning)
    const acl = aclSelect.value
    const existing = []
    for (const check of answer.files) {
      const file = uppy.getFile(check.id)
      if (!file) continue
      if (check.problem) {
        refuse(file, check.problem)
        continue
      }
      uppy.setFileMeta(file.id, { portalKey: check.key, portalAcl: acl, portalOverwrite: false })
      if (check.exists) existing.push(uppy.getFile(file.id))
    }
    if (existing.length === 0) return
    const replace = await ask(existing)
    for (const file of existing) {
      if (!uppy.getFile(file.id)) continue
      if (replace) uppy.setFileMeta(file.id, { portalOverwrite: true })
      else refuse(file, 'Skipped: a file with this name is already here.')
    }
  })

  // After a one-request upload: the portal checks what arrived and applies the visibility.
  uppy.addPostProcessor(async (fileIDs) => {
    for (const id of fileIDs) {
      const file = uppy.getFile(id)
      const uploadId = file?.meta.portalUpload
      if (!file || file.error || !uploadId?.startsWith(SINGLE_PREFIX)) continue
      uppy.emit('postprocess-progress', file, { mode: 'indeterminate', message: 'Checking…' })
      try {
        const done = await api(config.urls.complete, {
          uploadId,
          overwrite: file.meta.portalOverwrite === true,
        })
        finished.add(uploadId)
        noteResult(id, done)
        uppy.emit('postprocess-complete', uppy.getFile(id))
      } catch (error) {
        const current = uppy.getFile(id)
        if (!current) continue
        // A retry must send the file again (start() drops this attempt on the portal).
        const progress = {
          ...current.progress,
          uploadComplete: false,
          uploadStarted: null,
          bytesUploaded: 0,
          percentage: 0,
          postprocess: undefined,
        }
        uppy.setFileState(id, { progress })
        uppy.emit('upload-error', uppy.getFile(id), error)
      }
    }
  })

  function refuse (file, message) {
    notes.set(file.id, { name: displayName(file), message })
    uppy.removeFile(file.id)
  }

  // --- Questions ------------------------------------------------------------------------------

  let questions = Promise.resolve()

  function ask (files) {
    // One question at a time, even when batches overlap.
    const asked = questions.then(() => new Promise((resolve) => {
      const box = $('[data-upload-question]')
      const names = $('[data-upload-question-names]')
      $('[data-upload-question-text]').textContent = files.length === 1
        ? 'A file with this name is already here. Replace it?'
        : `${files.length} files with these names are already here. Replace them?`
      names.replaceChildren(...files.map((file) => {
        const item = document.createElement('li')
        item.textContent = file.meta.portalKey
        return item
      }))
      box.hidden = false
      box.querySelector('[data-upload-answer="skip"]').focus()
      box.addEventListener('click', function answer (event) {
        const choice = event.target.closest('[data-upload-answer]')
        if (!choice) return
        box.removeEventListener('click', answer)
        box.hidden = true
        resolve(choice.dataset.uploadAnswer === 'replace')
      })
    }))
    questions = asked
    return asked
  }

  function showRestore () {
    const { recoveredState } = uppy.getState()
    const files = uppy.getFiles()
    renderAll()
    if (!recoveredState || files.length === 0) return
    const box = $('[data-upload-restore]')
    const ghosts = files.filter((file) => file.isGhost)
    const interrupted = files.length === 1
      ? '1 upload was interrupted'
      : `${files.length} uploads were interrupted`
    $('[data-upload-restore-text]').textContent = ghosts.length
      ? `${interrupted}. To resume, choose ${ghosts.length === 1 ? 'this file' : 'these files'} again: ` +
        ghosts.map(displayName).join(', ')
      : `${interrupted} when the page closed.`
    $('[data-upload-resume]').disabled = ghosts.length > 0
    box.hidden = false
  }

  $('[data-upload-resume]').addEventListener('click', () => {
    $('[data-upload-restore]').hidden = true
    uppy.emit('restore-confirmed')
  })

  $('[data-upload-discard]').addEventListener('click', () => {
    $('[data-upload-restore]').hidden = true
    uppy.cancelAll()
  })

  // --- Adding files -------------------------------------------------------------------------

  for (const button of panel.querySelectorAll('[data-upload-pick]')) {
    button.addEventListener('click', () => {
      panel.querySelector(`[data-upload-input="${button.dataset.uploadPick}"]`).click()
    })
  }

  for (const input of panel.querySelectorAll('[data-upload-input]')) {
    input.addEventListener('change', () => {
      const descriptors = Array.from(input.files, (file) => ({
        source: 'FileInput',
        name: file.name,
        type: file.type,
        data: file,
        meta: { relativePath: file.webkitRelativePath || null },
      }))
      input.value = '' // the same file can be chosen again later
      try {
        uppy.addFiles(descriptors)
      } catch (error) {
        showWarning(error.message)
      }
    })
  }

  uppy.on('restriction-failed', (file, error) => {
    if (!file) return showWarning(error.message)
    const limit = formatBytes(config.maxBytes)
    notes.set(`refused-${Date.now()}-${file.name}`, {
      name: displayName(file),
      message: file.size > config.maxBytes ? `Larger than the ${limit} limit.` : error.message,
    })
    renderAll()
  })

  // --- Rows ---------------------------------------------------------------------------------

  function displayName (file) {
    return file.meta?.portalKey?.slice(config.prefix.length) ||
      file.meta?.relativePath || file.name
  }

  function formatBytes (bytes) {
    const units = ['bytes', 'KB', 'MB', 'GB', 'TB']
    let value = bytes
    let unit = 0
    while (value >= 1000 && unit < units.length - 1) {
      value /= 1000
      unit += 1
    }
    return unit === 0 ? `${value} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`
  }

  function rowFor (id) {
    let row = rows.get(id)
    if (row) return row
    row = document.createElement('li')
    row.className = 'upload-row'
    row.dataset.fileId = id
    row.dataset.testid = 'upload-row'
    const name = document.createElement('span')
    name.className = 'upload-name'
    const progress = document.createElement('progress')
    progress.max = 100
    const status = document.createElement('span')
    status.className = 'upload-status'
    const actions = document.createElement('span')
    actions.className = 'upload-actions'
    for (const [action, label] of [['retry', 'Retry'], ['cancel', 'Cancel'], ['dismiss', 'Dismiss']]) {
      const button = document.createElement('button')
      button.type = 'button'
      button.className = 'small outline secondary'
      button.dataset.action = action
      button.textContent = label
      actions.append(button)
    }
    row.append(name, progress, status, actions)
    rows.set(id, row)
    list.append(row)
    return row
  }

  function setRow (id, { name, state, percent, text, canCancel, canRetry, canDismiss }) {
    const row = rowFor(id)
    row.dataset.state = state
    const [nameNode, progress, status, actions] = row.children
    nameNode.textContent = name
    nameNode.title = name
    if (percent == null) progress.removeAttribute('value')
    else progress.value = percent
    progress.setAttribute('aria-label', `Progress of ${name}`)
    status.textContent = text
    actions.querySelector('[data-action="cancel"]').hidden = !canCancel
    actions.querySelector('[data-action="retry"]').hidden = !canRetry
    actions.querySelector('[data-action="dismiss"]').hidden = !canDismiss
  }

  function renderFile (file) {
    const name = displayName(file)
    const { progress } = file
    const total = file.size ?? 0
    const sent = progress.bytesUploaded || 0
    const percent = total > 0 ? Math.floor((sent / total) * 100) : progress.uploadComplete ? 100 : 0
    let state = 'waiting'
    let text = 'Waiting…'
    if (file.error) {
      state = 'error'
      text = `Failed: ${file.error}`
    } else if (file.isGhost) {
      state = 'paused'
      text = 'Interrupted: choose this file again to resume.'
    } else if (progress.complete || (progress.uploadComplete && !progress.postprocess)) {
      state = 'done'
      const took = ((finishedAt.get(file.id) || Date.now()) - (progress.uploadStarted || Date.now())) / 1000
      const average = took > 0 ? ` · ${formatBytes(total / took)}/s` : ''
      text = `Uploaded · ${formatBytes(total)}${average}${file.meta.portalPublic ? ' · public' : ''}`
    } else if (progress.uploadComplete) {
      state = 'checking'
      text = 'Checking…'
    } else if (file.isPaused) {
      state = 'paused'
      text = 'Paused'
    } else if (progress.uploadStarted) {
      state = 'uploading'
      const speed = speeds.get(file.id)?.speed
      text = `${percent}% · ${formatBytes(sent)} of ${formatBytes(total)}` +
        (speed ? ` · ${formatBytes(speed)}/s` : '')
    }
    setRow(file.id, {
      name,
      state,
      percent: state === 'checking' ? null : state === 'done' ? 100 : percent,
      text,
      canCancel: !['done', 'error'].includes(state),
      canRetry: state === 'error',
      canDismiss: state === 'error' || state === 'done',
    })
  }

  function renderNote (id, note) {
    setRow(id, {
      name: note.name,
      state: 'refused',
      percent: 0,
      text: note.message,
      canCancel: false,
      canRetry: false,
      canDismiss: true,
    })
  }

  function renderAll () {
    const files = uppy.getFiles()
    const alive = new Set([...files.map((file) => file.id), ...notes.keys()])
    for (const [id, row] of rows) {
      if (!alive.has(id)) {
        row.remove()
        rows.delete(id)
      }
    }
    files.forEach(renderFile)
    notes.forEach((note, id) => renderNote(id, note))
    renderSummary()
  }

  function renderSummary () {
    const files = uppy.getFiles()
    const done = files.filter(isDone).length
    const failed = files.filter((f) => f.error).length
    const active = files.length - done - failed
    const parts = []
    if (active) parts.push(`Uploading ${active} file${active === 1 ? '' : 's'}…`)
    if (done) parts.push(`${done} uploaded`)
    if (failed) parts.push(`${failed} failed`)
    if (notes.size) parts.push(`${notes.size} not uploaded`)
    summary.textContent = parts.join(' · ') || flash
    cancelAll.hidden = active === 0
  }

  function render (file) {
    const current = file && uppy.getFile(file.id)
    if (current) renderFile(current)
    renderSummary()
  }

  uppy.on('files-added', () => {
    renderAll()
    if (!$('[data-upload-restore]').hidden) showRestore()
  })
  uppy.on('upload-progress', (file, progress) => {
    if (!file) return
    const now = Date.now()
    const sample = speeds.get(file.id)
    const bytes = progress.bytesUploaded
    if (!sample || bytes < sample.bytes) {
      speeds.set(file.id, { bytes, time: now, speed: sample?.speed || 0 })
    } else if (now - sample.time >= SPEED_WINDOW_MS) {
      const current = ((bytes - sample.bytes) * 1000) / (now - sample.time)
      // Smoothed, so the figure does not jump with every progress event.
      const speed = sample.speed ? sample.speed * 0.6 + current * 0.4 : current
      speeds.set(file.id, { bytes, time: now, speed })
    }
    render(file)
  })
  for (const event of ['upload-start', 'upload-success', 'upload-error', 'upload-retry',
    'upload-pause', 'postprocess-progress', 'postprocess-complete', 'file-added']) {
    uppy.on(event, (fileOrFiles) => {
      const files = Array.isArray(fileOrFiles) ? fileOrFiles : [fileOrFiles]
      files.forEach(render)
    })
  }
  uppy.on('upload-success', (file) => {
    if (file) finishedAt.set(file.id, Date.now())
  })
  uppy.on('upload-error', (file, error) => {
    if (file && error && uppy.getFile(file.id)) {
      uppy.setFileState(file.id, { error: describe(error) })
      if (error.code === 'NETWORK' || error.status === 0) cutOff.add(file.id)
    }
    render(file)
  })

  // A connection that dropped mid-upload: when it is back, carry on from the parts S3 holds.
  const cutOff = new Set()
  uppy.on('back-online', () => {
    if (cutOff.size) uppy.retryAll().catch(() => {})
    cutOff.clear()
  })

  // The portal's own refusals (from a proxied part) carry {"error": message} in their body.
  function describe (error) {
    try {
      const data = JSON.parse(error.body)
      if (data?.error) return data.error
    } catch {}
    return error.message
  }

  uppy.on('file-removed', (file) => {
    speeds.delete(file.id)
    if (!file.progress.complete) abortQuietly(file.meta.portalUpload || file.s3Multipart?.uploadId)
    renderAll()
  })

  uppy.on('complete', finishBatch)

  function finishBatch (result) {
    renderAll()
    if (!result?.successful?.length) return
    const uploaded = uppy.getFiles().filter(isDone).length
    const failed = uppy.getFiles().some((f) => f.error)
    if (!failed && notes.size === 0 && !warnings.children.length && !hasActive()) {
      // Show the new files in the listing; the panel tells what happened after the reload.
      sessionStorage.setItem(FLASH_KEY, `${uploaded} file${uploaded === 1 ? '' : 's'} uploaded.`)
      // Forget the finished files first: Golden Retriever saves its state at most every 500 ms,
      // and a stale save would offer to resume them after the reload.
      uppy.clear()
      setTimeout(() => window.location.reload(), RELOAD_DELAY_MS)
      return
    }
    refresh.hidden = false
  }

  function isDone (file) {
    const { progress } = file
    return !file.error && (progress.complete || (progress.uploadComplete && !progress.postprocess))
  }

  function hasActive () {
    return uppy.getFiles().some((f) => !f.error && !isDone(f))
  }

  list.addEventListener('click', (event) => {
    const button = event.target.closest('[data-action]')
    const row = button?.closest('[data-file-id]')
    if (!row) return
    const id = row.dataset.fileId
    if (button.dataset.action === 'cancel') uppy.removeFile(id)
    else if (button.dataset.action === 'retry') uppy.retryUpload(id).then(finishBatch, () => {})
    else if (button.dataset.action === 'dismiss') {
      notes.delete(id)
      if (uppy.getFile(id)) uppy.removeFile(id)
      renderAll()
    }
  })

  cancelAll.addEventListener('click', () => uppy.cancelAll())
  refresh.addEventListener('click', () => window.location.reload())

  function showWarning (message) {
    const item = document.createElement('li')
    item.className = 'message message-warning'
    item.textContent = message
    warnings.append(item)
  }

  sessionStorage.removeItem(FLASH_KEY)
  renderSummary()
  panel.dataset.ready = 'true'
})()
